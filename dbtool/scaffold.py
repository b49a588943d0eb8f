"""`dbtool new <module> <what>`: start a schema change, the raw-SQL counterpart of `alembic revision`.

It writes two files, never replacing one (O_EXCL):

- sql/<module>/NNN_<what>.sql, numbered after the module's last file with the step its files use
  (usually 10), holding the header the project's SQL files carry and commented examples;
- migrations/<module>/<module>_NNNN_<what>.py, which applies it, with `__depends__` = the module's
  latest migration(s) and a rollback that refuses to run until it is written (`rollback_not_written`).

Every placeholder carries MARKER, so an unfinished scaffold cannot ship unnoticed: `unfinished()`
lists them and tests/test_scaffold.py fails while any is left, and `dbtool rollback` refuses a
migration whose rollback is not written yet (one line, exit 1, nothing rolled back).

`write_repo_modules()` is the other half of the recipe: after `dbtool snapshot`, a new table gets its
repository module dbtool/repo/<module>/<table>.py (never replacing one), shaped like every other.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import paths
from .errors import MigrationError, UsageError

MARKER = "TODO(dbtool new)"
UNWRITTEN = "rollback_not_written("
WHAT = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_WHAT = 63  # PostgreSQL's identifier length: <what> is often the table's name
DEFAULT_STEP = 10
_NUMBERED_SQL = re.compile(r"([0-9]{3})_.+\.sql")


@dataclass(frozen=True)
class Scaffold:
    """The two files of one `dbtool new`."""

    module: str
    what: str
    sql_path: Path
    migration_path: Path
    depends: tuple[str, ...]  # the module's latest migration(s), which the new one comes after

    @property
    def migration_id(self) -> str:
        return self.migration_path.stem


def check_what(what: str) -> str:
    """<what> becomes part of a file name, a migration id and often a table name: snake_case only."""
    if not WHAT.fullmatch(what) or len(what) > MAX_WHAT:
        shown = f"'{what}'" if what.isprintable() and len(what) <= 80 else repr(what[:80])
        raise UsageError(f"{shown} is not a snake_case name: use lower-case letters, digits and single "
                         f"underscores, starting with a letter, at most {MAX_WHAT} characters (e.g. loyalty_points)")
    return what


def next_sql_number(module: str) -> int:
    """After the module's last sql/ file, with the step between its numbers (the most common; 10 by default)."""
    numbers = sorted({int(m.group(1)) for p in paths.module_sql_files(module)
                      if (m := _NUMBERED_SQL.fullmatch(p.name))})
    if not numbers:
        return DEFAULT_STEP
    gaps = Counter(b - a for a, b in zip(numbers, numbers[1:]))
    step = max(gaps, key=lambda gap: (gaps[gap], gap)) if gaps else DEFAULT_STEP
    following = numbers[-1] + step
    if following > 999:
        raise UsageError(f"sql/{module}/ has no file number left after {numbers[-1]:03d} (NNN_ is three digits)")
    return following


def next_migration_number(module: str) -> int:
    pattern = re.compile(rf"{re.escape(module)}_([0-9]{{4}})_.+\.py")
    numbers = [int(m.group(1)) for p in (paths.migrations_dir() / module).iterdir()
               if (m := pattern.fullmatch(p.name))]
    following = max(numbers, default=0) + 1
    if following > 9999:
        raise UsageError(f"migrations/{module}/ has no migration number left after 9999")
    return following


def latest_migrations(module: str) -> tuple[str, ...]:
    """The module's migrations no other one depends on (one, unless its history has branches)."""
    from . import migrate as migrate_lib  # yoyo: only when scaffolding

    migrations = migrate_lib.load([module])
    depended_on = {d.id for m in migrations for d in m.depends}
    return tuple(sorted(m.id for m in migrations if m.id not in depended_on))


def plan(module: str, what: str) -> Scaffold:
    """Where `new` would write, without writing; a bad module or name is a usage error."""
    module = paths.check_modules([module])[0]
    what = check_what(what)
    sql_dir = paths.sql_dir() / module
    if not sql_dir.is_dir():
        raise UsageError(f"no sql/{module}/ folder for module {module} in {paths.root()}")
    return Scaffold(module, what, sql_dir / f"{next_sql_number(module):03d}_{what}.sql",
                    paths.migrations_dir() / module / f"{module}_{next_migration_number(module):04d}_{what}.py",
                    latest_migrations(module))


def render_sql(s: Scaffold) -> str:
    m, t = s.module, s.what
    return f"""\
-- Spec: {MARKER}: the seed document by file name (NNN_<16 hex digits>.txt, never a path) and the part of it
--       this follows; or Design: the issue or decision it comes from. Then what this file creates or changes.
-- Idempotent (a file may run again on a database that has it): CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT
-- EXISTS; every constraint and index named as PostgreSQL would (<table>_pkey, <table>_<cols>_key,
-- <table>_<col>_fkey, <table>_<cols>_idx); allowed values on a varchar as CHECK (col::text IN (...)).
-- Once applied anywhere else than your own database, this file is never edited again: add a new one.
-- Replace the lines above with the header, and the examples below with the statements.
--
-- A new table, for example:
-- CREATE TABLE IF NOT EXISTS {m}.{t} (
--     id bigint GENERATED ALWAYS AS IDENTITY,
--     code varchar(50) NOT NULL,
--     created_at timestamptz NOT NULL DEFAULT now(),
--     CONSTRAINT {t}_pkey PRIMARY KEY (id),
--     CONSTRAINT {t}_code_key UNIQUE (code)
-- );
-- COMMENT ON TABLE {m}.{t} IS 'What one row is.';
-- COMMENT ON COLUMN {m}.{t}.code IS 'Every column whose name does not say it all.';
--
-- A change to an existing table, for example:
-- ALTER TABLE {m}.<table> ADD COLUMN IF NOT EXISTS <column> <type>;
-- COMMENT ON COLUMN {m}.<table>.<column> IS '...';
"""


def render_migration(s: Scaffold) -> str:
    sql_name = s.sql_path.name
    quoted = ", ".join(f'"{d}"' for d in s.depends)
    depends = f"__depends__ = {{{quoted}}}" if s.depends else "__depends__: set[str] = set()"
    return f'''\
"""{s.module}: {MARKER}: what this migration changes (sql/{s.module}/{sql_name}), and what its rollback does.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql
from dbtool.scaffold import rollback_not_written

{depends}

# {MARKER}: replace rollback_not_written(__file__) with the SQL that undoes {sql_name}, e.g.
#   rollback_sql(__file__, "DROP TABLE IF EXISTS {s.module}.{s.what}")
# and remove its import. Until then `dbtool rollback` refuses this migration and `make test` fails.
step(apply_files(__file__, "{sql_name}"), rollback_not_written(__file__))
'''


def _create(path: Path, text: str) -> None:
    """Write a new file; an existing one is never replaced (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError:
        raise UsageError(f"{_shown(path)} already exists: dbtool new never replaces a file") from None
    except OSError as exc:
        raise UsageError(f"cannot create {_shown(path)}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def create(module: str, what: str) -> Scaffold:
    """Write both files, or neither: when the second cannot be created, the first (ours) is removed."""
    s = plan(module, what)
    _create(s.sql_path, render_sql(s))
    try:
        _create(s.migration_path, render_migration(s))
    except BaseException:
        s.sql_path.unlink()
        raise
    return s


def _shown(path: Path) -> str:
    """A path as the user can use it: relative to the current folder when under it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def next_steps(s: Scaffold) -> list[str]:
    """What `new` prints: the files it wrote, then what is left to do, in order."""
    sql_file, migration = _shown(s.sql_path), _shown(s.migration_path)
    after = ", ".join(s.depends) or "none: the module's first migration"
    root = paths.root()
    elsewhere = [f"(run the make commands in {root})"] if Path.cwd().resolve() != root else []
    return [
        f"created {sql_file}",
        f"created {migration} (after {after})",
        "next steps:",
        f"  1. write the SQL in {sql_file}:",
        "     its header (where the design comes from), idempotent DDL with every constraint and",
        "     index named, COMMENT ON the table and its non-obvious columns",
        f"  2. write the rollback in {migration}:",
        "     until then `dbtool rollback` refuses it, and `make test` fails",
        "  3. make snapshot   (dbtool snapshot) expected catalog, psql entry file, typed rows, and a",
        f"                    new table's repository module dbtool/repo/{s.module}/<table>.py; review the diff",
        "  4. make docs       (dbtool docs) docs/SCHEMA.md and the other generated docs",
        "  5. make migrate    (dbtool migrate) then `dbtool validate`: it should be clean",
        "  6. make test",
        *elsewhere,
    ]


def rollback_not_written(migration_file: str) -> Callable[[object], None]:
    """A rollback step that refuses to run: `dbtool new` puts it where the migration's rollback goes."""
    migration_id = Path(migration_file).stem

    def refuse(_conn: object) -> None:
        raise MigrationError(f"the rollback of {migration_id} is not written yet: write it in "
                             f"migrations/{Path(migration_file).parent.name}/{Path(migration_file).name} "
                             f"(rollback_sql, in place of rollback_not_written); nothing was rolled back")

    return refuse


def unfinished(root: Path | None = None) -> list[str]:
    """`file:line` of every placeholder `dbtool new` left in sql/ and migrations/ (empty when all are done)."""
    root = root or paths.root()
    found = []
    for folder, pattern in (("sql", "*.sql"), ("migrations", "*.py")):
        for path in sorted((root / folder).rglob(pattern)):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # not ours to judge: migrate and validate name such files
            for number, line in enumerate(text.splitlines(), 1):
                if MARKER in line or (folder == "migrations" and UNWRITTEN in line and "import" not in line):
                    found.append(f"{path.relative_to(root)}:{number}")
    return found


# -- a new table's repository module, after `dbtool snapshot` ------------------------------------------------
def render_repo_module(module: str, table: str) -> str | None:
    """dbtool/repo/<module>/<table>.py as every table has it; None when the table has no primary key
    (a repository Table needs one)."""
    from .catalog.expected import load_snapshot
    from .repo._generate import class_name
    from .repo._table import Table

    snap = load_snapshot(module)
    if not any(c.type == "primary key" for c in snap.constraints(module, table)):
        return None
    comment = " ".join((next(t for t in snap.tables() if t.name == table).comment or "").split())
    comment = comment.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    first = textwrap.fill(f"{module}.{table}: {comment or 'a table of ' + module + ' (no COMMENT ON TABLE yet).'}",
                          width=110)
    names = ["get", "insert", "update", "delete"] + (["upsert"] if Table(module, table, object).natural_key else [])
    names += ["page", "load"]
    row = class_name(table)
    return f'''"""{first}

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Written by `dbtool snapshot` for a new table: add the table's own queries here.
"""

from .._table import Table
from ..rows_generated import {row}

T = Table("{module}", "{table}", {row})
{", ".join(names)} = ({", ".join(f"T.{n}" for n in names)})
'''


def write_repo_modules(modules: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Create dbtool/repo/<module>/<table>.py for every table of the snapshots that has none (an existing
    file is never replaced). Returns the files written and, for tables that get none, why."""
    from .repo import table_names
    from .repo._generate import TARGET

    written: list[Path] = []
    skipped: list[str] = []
    for module in modules or paths.modules():
        package = TARGET.parent / module
        for table in table_names(module):
            path = package / f"{table}.py"
            if path.exists():
                continue
            text = render_repo_module(module, table)
            if text is None:
                skipped.append(f"{module}.{table}: no repository module (it has no primary key)")
                continue
            if not package.is_dir():
                package.mkdir()
                _create(package / "__init__.py", f'"""Repository functions of the {module} schema, one module '
                                                 'per table."""\n')
            _create(path, text)
            written.append(path)
    return written, skipped
