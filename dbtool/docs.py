"""Generated documentation: the schema (docs/SCHEMA.md + docs/schema.svg) and the CLI reference (docs/CLI.md).

Both come from sources that tests already keep honest: the schema from the committed
expected catalog (what PostgreSQL makes of sql/, see catalog/expected.py), the CLI
reference from every command's --help. Output is deterministic (sorted, no dates), so
a test can regenerate in memory and fail when the committed files are stale.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import click

from . import paths
from .catalog.expected import load_snapshot
from .catalog.model import Catalog, Column, Constraint, Function, Index, Obj, Table, Trigger
from .paths import modules as all_modules
from .repo.chatbot.personal_data import is_personal, without_tag

REGENERATE = "Regenerate with `make docs` (or `dbtool docs`); a test fails when this file is stale."
HELP_WIDTH = 78  # what click uses on any terminal of 80 columns or more (80 - 2)

# Columns whose meaning the name says; every other column should carry a COMMENT ON COLUMN.
OBVIOUS_COLUMNS = {"id", "created_at", "updated_at", "name", "email", "first_name", "last_name", "title",
                   "description"}


# -- the schema -------------------------------------------------------------------
def _md(text: object) -> str:
    """A value safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    return f"`{_md(text)}`" if text not in (None, "") else ""


def _short(name: str) -> str:
    return name.split(".")[-1]


Named = TypeVar("Named", bound=Obj)


def _by_name(objects: list[Named]) -> list[tuple[str, Named]]:
    return [(o.name, o) for o in sorted(objects, key=lambda o: o.name)]


class ModuleDoc:
    """The expected catalog of one module, grouped by table."""

    def __init__(self, module: str, catalog: Catalog):
        self.module = module
        self.catalog = catalog
        self.tables = sorted(catalog.objects("table"))
        self.columns: dict[str, list[tuple[str, Column]]] = defaultdict(list)
        self.constraints: dict[str, list[tuple[str, Constraint]]] = defaultdict(list)
        self.indexes: dict[str, list[tuple[str, Index]]] = defaultdict(list)
        self.triggers: dict[str, list[tuple[str, Trigger]]] = defaultdict(list)
        for t in catalog.tables():
            self.columns[t.key] = [(c.name, c) for c in catalog.columns(t.schema, t.name)]
            self.constraints[t.key] = _by_name(catalog.constraints(t.schema, t.name))
            self.indexes[t.key] = _by_name(catalog.indexes(t.schema, t.name))
            self.triggers[t.key] = _by_name(catalog.triggers(t.schema, t.name))

    def table(self, key: str) -> Table:
        t = self.catalog.objects("table")[key]
        assert isinstance(t, Table)
        return t

    def schema_comment(self) -> str | None:
        return getattr(self.catalog.objects("schema").get(self.module), "comment", None)

    def of_type(self, table: str, kind: str) -> list[tuple[str, Constraint]]:
        return [(n, a) for n, a in self.constraints[table] if a.type == kind]

    def enum_note(self, pg_type: str) -> str:
        """For an uncommented column of one of the module's enum types: its values."""
        enum = self.catalog.enums().get(pg_type)
        return f"One of {', '.join(enum.labels)}." if enum else ""

    def key_columns(self, table: str) -> dict[str, list[str]]:
        marks: dict[str, list[str]] = defaultdict(list)
        for kind, mark in (("primary key", "PK"), ("foreign key", "FK"), ("unique", "UK")):
            for _n, con in self.of_type(table, kind):
                for col in con.columns:
                    if mark not in marks[col]:
                        marks[col].append(mark)
        return marks


def _table_section(doc: ModuleDoc, table: str) -> list[str]:
    attrs = doc.table(table)
    kind = "" if attrs.relkind == "table" else f" ({attrs.relkind})"
    out = [f"### `{table}`{kind}", "", _md(attrs.comment or "*(no comment)*"), ""]
    marks = doc.key_columns(table)
    out += ["| column | type | null | default | key | comment |", "|---|---|---|---|---|---|"]
    for col, c in doc.columns[table]:
        default = c.default or (f"identity {c.identity}" if c.identity else None)
        if c.generated:
            default = f"generated: {c.generated}"
        out.append(f"| `{col}` | {_code(c.type)} | {'yes' if c.nullable else 'no'} | {_code(default)} "
                   f"| {', '.join(marks.get(col, []))} | {_comment_cell(c.comment) or _md(doc.enum_note(c.type))} |")
    keys = []
    for name, con in doc.of_type(table, "primary key") + doc.of_type(table, "unique"):
        keys.append(f"- {con.type} `{name}`: ({', '.join(con.columns)})")
    for name, con in doc.of_type(table, "foreign key"):
        actions = f"ON DELETE {con.on_delete}, ON UPDATE {con.on_update}"
        keys.append(f"- foreign key `{name}`: ({', '.join(con.columns)}) → `{con.references}` "
                    f"({', '.join(con.ref_columns)}), {actions}")
    for title, lines in (("Keys", keys),
                         ("Checks", [f"- `{n}`: `{_md(c.definition)}`" for n, c in doc.of_type(table, "check")]),
                         ("Exclusion constraints", [f"- `{n}`: `{_md(c.definition)}`"
                                                    for n, c in doc.of_type(table, "exclusion")]),
                         ("Indexes", [_index_line(n, i) for n, i in doc.indexes[table]]),
                         ("Triggers", [_trigger_line(n, t, table) for n, t in doc.triggers[table]])):
        if lines:
            out += ["", f"**{title}**", "", *lines]
    return out + [""]


def _comment_cell(comment: str | None) -> str:
    """A column's comment; one ending with the [personal data] tag shows it in bold, first."""
    if not is_personal(comment):
        return _md(comment or "")
    rest = without_tag(comment)
    return "**personal data**" + (f" · {_md(rest)}" if rest else "")


def _trigger_line(name: str, trigger: Trigger, table: str) -> str:
    when = trigger.definition.replace(f"CREATE TRIGGER {name} ", "", 1).replace(f" ON {table}", "", 1)
    return f"- `{name}`: `{_md(when)}`" + ("" if trigger.enabled != "disabled" else " (disabled)")


def _index_line(name: str, idx: Index) -> str:
    using = idx.definition.split(" USING ", 1)[-1]
    flags = "primary key" if idx.primary else "unique" if idx.unique else ""
    backs = f", backs constraint `{idx.constraint}`" if idx.constraint and idx.constraint != name else ""
    return f"- `{name}`: `{_md(using)}`" + (f" ({flags}{backs})" if flags or backs else "")


_TYPE_SHORT = [("timestamp with time zone", "timestamptz"), ("timestamp without time zone", "timestamp"),
               ("time with time zone", "timetz"), ("time without time zone", "time"),
               ("character varying", "varchar"), ("double precision", "float8"), ("bit varying", "varbit"),
               ("character", "char")]


def mermaid_type(pg_type: str) -> str:
    """A Mermaid attribute type: one word, no typmod, no schema (`infra.agent_status` -> agent_status)."""
    t = re.sub(r"\([^)]*\)", "", pg_type)
    for long, short in _TYPE_SHORT:
        t = t.replace(long, short)
    return _short(t).replace(" ", "_")


def _entity(doc: ModuleDoc, table: str) -> str:
    schema, name = table.split(".", 1)
    return name if schema == doc.module else f"{schema}_{name}"


def mermaid(doc: ModuleDoc) -> list[str]:
    """An erDiagram: entities with columns and PK/FK/UK marks, one relationship per foreign key."""
    out = ["```mermaid", "erDiagram"]
    outside: set[str] = set()
    rels = []
    for table in doc.tables:
        marks = doc.key_columns(table)
        out.append(f"    {_entity(doc, table)} {{")
        for col, c in doc.columns[table]:
            keys = f" {', '.join(marks[col])}" if marks.get(col) else ""
            out.append(f"        {mermaid_type(c.type)} {col}{keys}")
        out.append("    }")
        uniques = [set(c.columns) for kind in ("primary key", "unique") for _n, c in doc.of_type(table, kind)]
        for _n, fk in doc.of_type(table, "foreign key"):
            ref = fk.references or ""
            nullable = any(c.nullable for col, c in doc.columns[table] if col in fk.columns)
            parent = ("|o" if nullable else "||")
            child = "o|" if set(fk.columns) in uniques else "o{"
            rels.append(f"    {_entity(doc, ref)} {parent}--{child} {_entity(doc, table)} "
                        f": \"{', '.join(fk.columns)}\"")
            if ref not in doc.catalog.objects("table"):
                outside.add(_entity(doc, ref))
    out += [f"    {e} {{\n    }}" for e in sorted(outside)]
    return out + rels + ["```"]


def schema_markdown(modules: list[str] | None = None) -> str:
    modules = modules or all_modules()
    docs = [ModuleDoc(m, load_snapshot(m)) for m in modules]
    out = ["# Database schema", "",
           "Generated by `dbtool docs` from the expected catalog (`dbtool/catalog/snapshots/`, what PostgreSQL "
           "makes of `sql/`). Do not edit by hand. " + REGENERATE, "",
           "Keys in the diagrams: PK primary key, FK foreign key, UK unique. Types in the diagrams are shortened "
           "(no length); the tables give them in full.", "",
           "**personal data** marks a column holding personal data (LGPD): its comment ends with the tag "
           "`[personal data]` (`sql/<module>/NNN_personal_data.sql`). User erasure and the retention purge take "
           "their tables from these tags and the foreign keys; these are the columns to encrypt first.",
           "", "## Modules", ""]
    for doc in docs:
        comment = doc.schema_comment() or ""
        out.append(f"- [`{doc.module}`](#module-{doc.module}): {len(doc.tables)} table(s). {_md(comment)}")
    for doc in docs:
        about = doc.schema_comment()
        out += ["", f"## Module {doc.module}", ""]
        if about:
            out += [_md(about), ""]
        out += ["| table | comment |", "|---|---|"]
        out += [f"| [`{_short(t)}`](#{re.sub(r'[^a-z0-9_-]', '', t.lower())}) "
                f"| {_md(doc.table(t).comment or '')} |" for t in doc.tables]
        out += ["", *mermaid(doc), ""]
        enums = sorted(doc.catalog.enums().items())
        if enums:
            out += ["**Enum types**", "", "| type | values | comment |", "|---|---|---|"]
            out += [f"| `{n}` | {', '.join(f'`{v}`' for v in e.labels)} | {_md(e.comment or '')} |"
                    for n, e in enums]
            out.append("")
        functions = sorted((f.key, f) for f in doc.catalog.objects("function").values() if isinstance(f, Function))
        if functions:
            out += ["**Functions**", ""]
            out += [f"- `{n}` returns `{f.returns}`: {_md(f.comment or '')}".rstrip(": ") for n, f in functions]
            out.append("")
        for table in doc.tables:
            out += _table_section(doc, table)
    return "\n".join(out).rstrip() + "\n"


def schema_dot(modules: list[str] | None = None) -> str:
    """Graphviz source of the whole schema: one cluster per module, one record per table."""
    modules = modules or all_modules()
    out = ['digraph schema {', '  graph [rankdir=LR, fontname="Helvetica", fontsize=12];',
           '  node [shape=plain, fontname="Helvetica", fontsize=10];', '  edge [arrowhead=crow, arrowtail=tee, '
           'dir=both, color="#555555"];']
    edges = []
    for module in modules:
        doc = ModuleDoc(module, load_snapshot(module))
        out += [f'  subgraph "cluster_{module}" {{', f'    label="{module}";', '    color="#999999";']
        for table in doc.tables:
            marks = doc.key_columns(table)
            rows = [f'<tr><td bgcolor="#dde6f0" colspan="2"><b>{_html(table)}</b></td></tr>']
            for col, c in doc.columns[table]:
                mark = " " + ",".join(marks[col]) if marks.get(col) else ""
                rows.append(f'<tr><td align="left" port="{_html(col)}">{_html(col)}{_html(mark)}</td>'
                            f'<td align="left">{_html(mermaid_type(c.type))}</td></tr>')
            label = '<table border="0" cellborder="1" cellspacing="0">' + "".join(rows) + "</table>"
            out.append(f'    "{table}" [label=<{label}>];')
            for _n, fk in doc.of_type(table, "foreign key"):
                edges.append(f'  "{table}":"{fk.columns[0]}" -> "{fk.references}":"{fk.ref_columns[0]}";')
        out.append("  }")
    return "\n".join(out + sorted(edges) + ["}"]) + "\n"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def uncommented(modules: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(tables without a comment, non-obvious columns without one).

    Key columns, the usual names (OBVIOUS_COLUMNS) and columns of an enum type (the
    docs list its values) count as obvious.
    """
    tables, columns = [], []
    for module in modules or all_modules():
        doc = ModuleDoc(module, load_snapshot(module))
        for table in doc.tables:
            if not doc.table(table).comment:
                tables.append(table)
            marks = doc.key_columns(table)
            columns += [f"{table}.{col}" for col, c in doc.columns[table]
                        if not c.comment and col not in OBVIOUS_COLUMNS and not marks.get(col)
                        and not doc.enum_note(c.type)]
    return tables, columns


# -- the CLI reference ------------------------------------------------------------
def walk(command: click.Command, name: str = "dbtool",
         parent: click.Context | None = None) -> Iterator[tuple[str, click.Command, str]]:
    """(full name, command, help text) of the command and every subcommand, depth first, sorted."""
    # The command's own context_settings (e.g. `-h, --help`), at click's default width: the
    # reference then reads exactly as `--help` does on any terminal of 80 columns or more.
    settings = {**command.context_settings, "terminal_width": HELP_WIDTH}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx.command_path, command, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub in sorted(command.list_commands(ctx)):
            subcommand = command.get_command(ctx, sub)
            if subcommand is not None:  # a listed name that resolves to no command has no help to show
                yield from walk(subcommand, sub, ctx)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).replace(" ", "-")


def _cli(root: click.Command | None) -> click.Command:
    """The given command, else dbtool's own CLI (imported only when needed)."""
    if root is not None:
        return root
    from .cli import cli
    return cli


def cli_markdown(root: click.Command | None = None) -> str:
    entries = list(walk(_cli(root)))
    out = ["# dbtool command reference", "",
           "Generated from every command's `--help`. Do not edit by hand. " + REGENERATE, "", "## Commands", ""]
    for path, cmd, _help in entries:
        out.append(f"- [`{path}`](#{_anchor(path)}): {_md(cmd.get_short_help_str(limit=200))}")
    for path, _cmd, text in entries:
        out += ["", f"## {path}", "", "```text", text.rstrip(), "```"]
    return "\n".join(out) + "\n"


def commands_without_example(root: click.Command | None = None) -> list[str]:
    return [path for path, _cmd, text in walk(_cli(root)) if "Example" not in text]


# -- writing --------------------------------------------------------------------------
def render_all() -> dict[str, str]:
    """{file name: content} of the generated text files (schema.dot is the source of schema.svg)."""
    from .catalog.coverage import coverage_markdown

    return {"SCHEMA.md": schema_markdown(), "CLI.md": cli_markdown(), "schema.dot": schema_dot(),
            "COVERAGE.md": coverage_markdown()}


def write(out_dir: Path | None = None, *, svg: bool = True) -> list[Path]:
    """Write the docs; docs/schema.svg only when Graphviz `dot` is installed."""
    out_dir = Path(out_dir or paths.root() / "docs")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    dot = shutil.which("dot")
    if svg and dot:
        proc = subprocess.run([dot, "-Tsvg"], input=schema_dot(), capture_output=True, text=True, check=True)
        (out_dir / "schema.svg").write_text(proc.stdout, encoding="utf-8")
        written.append(out_dir / "schema.svg")
    elif svg and (out_dir / "schema.svg").exists():
        # Say so rather than leave a picture that may no longer match schema.dot.
        print(f"note: Graphviz `dot` not found: {out_dir / 'schema.svg'} was not regenerated", file=sys.stderr)
    return written


def stale(out_dir: Path | None = None) -> list[str]:
    """Names of the generated Markdown files that are missing or differ from what sql/ and --help say now."""
    out_dir = Path(out_dir or paths.root() / "docs")
    return [name for name, text in render_all().items()
            if not (out_dir / name).exists() or (out_dir / name).read_text(encoding="utf-8") != text]
