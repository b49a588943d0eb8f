"""docs/SCHEMA.md: generated from the expected catalog, committed, never stale; Mermaid that parses."""

from __future__ import annotations

import re

from dbtool import docs, paths
from dbtool.catalog.expected import load_snapshot
from dbtool.paths import modules
from helpers import run_dbtool

# Lines an erDiagram block may hold (Mermaid's grammar, restricted to what we emit).
ENTITY_OPEN = re.compile(r"^    [A-Za-z_][\w-]* \{$")
ATTRIBUTE = re.compile(r"^        [A-Za-z_][\w\[\]-]* [A-Za-z_]\w*( (PK|FK|UK)(, (PK|FK|UK))*)?$")
RELATION = re.compile(r'^    [\w-]+ (\|\||\|o)--(o\{|o\|) [\w-]+ : "[^"]+"$')


def mermaid_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"```mermaid\n(.*?)```", text, re.S)]


def test_committed_schema_doc_is_current():
    committed = (paths.ROOT / "docs" / "SCHEMA.md").read_text(encoding="utf-8")
    assert committed == docs.schema_markdown(), "docs/SCHEMA.md is stale: run `make docs` and commit it"


def test_every_table_and_non_obvious_column_has_a_comment():
    tables, columns = docs.uncommented()
    assert tables == [], f"tables without COMMENT ON TABLE in sql/: {tables}"
    assert columns == [], f"non-obvious columns without COMMENT ON COLUMN in sql/: {columns}"


def test_one_er_diagram_per_module_with_every_table_and_foreign_key():
    text = docs.schema_markdown()
    blocks = mermaid_blocks(text)
    assert len(blocks) == len(modules())
    for module, block in zip(modules(), blocks):
        catalog = load_snapshot(module)
        assert block[0] == "erDiagram"
        body = block[1:]
        for line in body:
            assert line == "    }" or ENTITY_OPEN.match(line) or ATTRIBUTE.match(line) or RELATION.match(line), \
                f"not Mermaid erDiagram syntax in {module}: {line!r}"
        entities = {line.split()[0] for line in body if ENTITY_OPEN.match(line)}
        assert entities >= {t.name for t in catalog.tables()}
        fks = [c for c in catalog.objects("constraint").values() if getattr(c, "type") == "foreign key"]
        assert sum(bool(RELATION.match(line)) for line in body) == len(fks)
        attributes = sum(bool(ATTRIBUTE.match(line)) for line in body)
        assert attributes == len(catalog.objects("column"))


def test_tables_keys_checks_and_indexes_are_all_documented():
    text = docs.schema_markdown()
    for module in modules():
        catalog = load_snapshot(module)
        for t in catalog.tables():
            assert f"### `{t.key}`" in text
            assert " ".join((t.comment or "").split()).replace("|", "\\|") in text
        for t in catalog.tables():
            for con in catalog.constraints(t.schema, t.name):
                if con.type == "foreign key":
                    assert re.search(rf"foreign key `{con.name}`: .* → `{con.references}` .*ON DELETE {con.on_delete}",
                                     text), con.name
                else:
                    assert f"`{con.name}`" in text, con.name
            for ix in catalog.indexes(t.schema, t.name):
                assert f"- `{ix.name}`: `" in text


def test_mermaid_types_are_single_words():
    assert docs.mermaid_type("character varying(255)") == "varchar"
    assert docs.mermaid_type("timestamp with time zone") == "timestamptz"
    assert docs.mermaid_type("numeric(12,2)") == "numeric"
    assert docs.mermaid_type("infra.agent_status") == "agent_status"
    assert docs.mermaid_type("double precision") == "float8"
    assert docs.mermaid_type("text[]") == "text[]"


def test_docs_command_writes_and_check_detects_staleness(tmp_path):
    done = run_dbtool("docs", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "SCHEMA.md").read_text(encoding="utf-8") == docs.schema_markdown()
    assert (tmp_path / "CLI.md").exists()
    assert run_dbtool("docs", "--check", "--out", str(tmp_path)).returncode == 0
    with open(tmp_path / "SCHEMA.md", "a", encoding="utf-8") as fh:
        fh.write("hand edit\n")
    done = run_dbtool("docs", "--check", "--out", str(tmp_path))
    assert done.returncode == 1 and "stale: SCHEMA.md" in done.stderr


def test_graphviz_source_has_every_table_and_foreign_key():
    dot = docs.schema_dot()
    for module in modules():
        catalog = load_snapshot(module)
        assert f'subgraph "cluster_{module}"' in dot
        for table in catalog.objects("table"):
            assert f'    "{table}" [label=<' in dot
    fk_count = sum(getattr(c, "type") == "foreign key" for m in modules()
                   for c in load_snapshot(m).objects("constraint").values())
    assert dot.count(" -> ") == fk_count


def test_write_without_svg_writes_the_text_files_only(tmp_path):
    written = docs.write(tmp_path, svg=False)
    assert sorted(p.name for p in written) == ["CLI.md", "COVERAGE.md", "SCHEMA.md", "schema.dot"]
    assert not (tmp_path / "schema.svg").exists()
