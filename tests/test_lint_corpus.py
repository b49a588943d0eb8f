"""`dbtool lint` on the corpus (tests/lint_corpus/): every unsafe file flagged with its rule at its line,
every safe variant clean, style rules only when asked; against a real server (the suite's), and without one.

Each file's `-- expect: <rule>` markers (`-- expect below:` for the next line) are the findings it must
report, no more, no fewer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from dbtool.lint import rules
from helpers import run_dbtool

CORPUS = Path(__file__).with_name("lint_corpus")
UNSAFE = sorted(CORPUS.glob("*.sql"))
SAFE = sorted((CORPUS / "safe").glob("*.sql"))
STYLE = sorted((CORPUS / "style").glob("*.sql"))
MARKER = re.compile(r"--\s*expect( below)?:\s*([a-z0-9, -]+?)\s*$")


def expected(path: Path) -> set[tuple[int, str]]:
    out = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = MARKER.search(line)
        if m:
            out |= {(number + (1 if m.group(1) else 0), r.strip()) for r in m.group(2).split(",")}
    return out


def lint_json(*args: str) -> dict:
    out = run_dbtool("lint", "--format", "json", *args)
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout)


def by_file(doc: dict, key: str = "findings") -> dict[str, set[tuple[int, str]]]:
    found: dict[str, set[tuple[int, str]]] = {}
    for f in doc[key]:
        found.setdefault(f["file"], set()).add((f["line"], f["rule"]))
    return found


@pytest.fixture(scope="module")
def lint_url(migrated_proc) -> str:
    """One migrated database for the whole corpus (lint only reads it), with a NOT VALID check on
    crm.customer.email that safe/set_not_null_after_validate.sql validates, and a partitioned table."""
    janitor = DatabaseJanitor(user=migrated_proc.user, host=migrated_proc.host, port=migrated_proc.port,
                              dbname="lint_corpus", template_dbname=migrated_proc.template_dbname)
    janitor.drop()
    with janitor:
        url = f"postgresql://{migrated_proc.user}@/lint_corpus?host={migrated_proc.host}&port={migrated_proc.port}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE crm.customer ADD CONSTRAINT customer_email_not_null "
                         "CHECK (email IS NOT NULL) NOT VALID")
            conn.execute("CREATE SCHEMA metrics; CREATE TABLE metrics.readings (at date NOT NULL, value float8) "
                         "PARTITION BY RANGE (at); CREATE TABLE metrics.readings_2024 PARTITION OF metrics.readings "
                         "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
        yield url


@pytest.fixture(scope="module")
def unsafe(lint_url) -> dict:
    return lint_json("--database-url", lint_url, *map(str, UNSAFE))


@pytest.fixture(scope="module")
def safe(lint_url) -> dict:
    return lint_json("--database-url", lint_url, *map(str, SAFE))


def rel(path: Path) -> str:
    return str(path.relative_to(CORPUS.parents[1]))


@pytest.mark.parametrize("path", UNSAFE, ids=lambda p: p.stem)
def test_unsafe_file_is_flagged_at_its_lines(unsafe, path):
    assert expected(path), f"{path.name} marks no finding"
    assert by_file(unsafe).get(rel(path), set()) == expected(path)


@pytest.mark.parametrize("path", SAFE, ids=lambda p: p.stem)
def test_safe_variant_is_not_flagged(safe, path):
    assert by_file(safe).get(rel(path), set()) == set()


def test_every_rule_has_an_unsafe_example():
    marked = {rule for path in UNSAFE + STYLE for _line, rule in expected(path)}
    untested_here = {"psql-meta-command"}  # needs a file a migration applies: tests/test_lint_pending.py
    assert set(rules.RULES) - untested_here <= marked, set(rules.RULES) - untested_here - marked
    assert marked <= set(rules.RULES)


def test_ignores_with_a_reason_are_reported_as_ignored(safe):
    ignored = {(f["file"], f["line"], f["rule"]): f["reason"] for f in safe["ignored"]}
    assert ignored == {
        ("tests/lint_corpus/safe/ignored_with_reason.sql", 3, "create-index-not-concurrent"):
            "crm.reco_run holds one row per nightly run (a few hundred)",
        ("tests/lint_corpus/safe/ignored_with_reason.sql", 4, "drop-index-not-concurrent"):
            "crm.customer is empty until the import",
    }


def test_the_server_is_asked(unsafe, lint_url):
    """Volatility from pg_proc and casts from pg_cast, row estimates from pg_class; the grammar noted."""
    messages = "\n".join(f["message"] for f in unsafe["findings"])
    assert "its default calls clock_timestamp(), which pg_proc says is volatile" in messages
    assert "integer to bigint is not binary-coercible in pg_cast (it converts by a cast function)" in messages
    assert unsafe["volatility"] == "pg_proc, pg_cast"
    assert unsafe["catalog"].startswith("the live catalog of postgresql://")
    assert "crm.customer (no row estimate: never analyzed) without CONCURRENTLY" in messages  # reltuples -1
    server = unsafe["server"]["major"]
    assert unsafe["parser"]["grammar_major"] == 18
    assert len(unsafe["warnings"]) == (0 if server == 18 else 1)
    if server != 18:
        assert f"the server runs PostgreSQL {server}" in unsafe["warnings"][0]


def test_row_estimates_come_from_pg_class(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO crm.reco_run (run_id, config_hash, status) "
                     "SELECT 'r' || i, repeat('0', 64), 'COMPLETED' FROM generate_series(1, 1500) i")
        conn.execute("ANALYZE crm.reco_run")
    doc = lint_json("--database-url", db_url, str(CORPUS / "safe" / "ignored_with_reason.sql"))
    assert "crm.reco_run (~1,500 rows)" in doc["ignored"][0]["message"]


def test_without_a_database_nothing_is_started_and_the_rule_is_conservative():
    """No DATABASE_URL or PG*: the snapshot says which tables exist; a default calling a pg_catalog function
    counts as volatile and a change of type as a rewrite, and the report says why."""
    doc = lint_json(str(CORPUS / "safe" / "add_column_stable_default.sql"),
                    str(CORPUS / "safe" / "alter_type_binary_coercible.sql"),
                    str(CORPUS / "safe" / "alter_type_longer.sql"), str(CORPUS / "create_index_not_concurrent.sql"))
    assert doc["database"] is None and doc["server"] is None and doc["volatility"] == "conservative"
    messages = {f["rule"]: f["message"] for f in doc["findings"]}
    assert "its default uses now(), assumed volatile: no database was given" in messages["add-column-rewrite"]
    assert "character varying(512) to text is not checked against pg_cast (no database given" in \
        messages["alter-column-type-rewrite"]
    assert "crm.customer without CONCURRENTLY" in messages["create-index-not-concurrent"]  # in the snapshot
    assert not any(f["file"].endswith("alter_type_longer.sql") for f in doc["findings"])  # widening: no server needed
    assert any("no database given" in n for n in doc["notes"])


def test_style_rules_only_when_asked():
    paths = list(map(str, STYLE))
    assert lint_json(*paths)["findings"] == []
    for how in (["--style"], ["--rules", "default,style"]):
        doc = lint_json(*how, *paths)
        for path in STYLE:
            assert by_file(doc).get(rel(path), set()) == expected(path), (how, path.name)
    only = lint_json("--rules", "prefer-timestamptz", *paths)
    assert {f["rule"] for f in only["findings"]} == {"prefer-timestamptz"}
