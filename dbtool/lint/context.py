"""What lint knows that a linter alone does not.

- Which tables exist before a migration runs: the committed snapshot of sql/ (no database needed), or
  the live catalog of the target (read with dbtool.catalog.read) with pg_class.reltuples estimates.
  Tables the same migration creates earlier are new: an index on them needs no CONCURRENTLY.
- Which migration applies a file, in what order, and whether it runs in one transaction
  (`__transactional__`, a file's `-- transactional: false`).
- The lock_timeout and statement_timeout dbtool sets around every file (migration_steps), and a
  file's own `-- lock_timeout:` / `-- statement_timeout:` directives.
- Volatility and casts as the server judges them, from pg_proc, pg_operator and pg_cast, when a
  database is given. Without one, nothing is started: a default calling a function that is not a
  module function (snapshot) or declared in the migration counts as volatile, a type change to
  another type counts as a rewrite, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import paths, settings
from ..catalog.model import Catalog, Column, Constraint, Function, Index, Table
from ..errors import DbtoolError

VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}

ROWS_SQL = """
SELECT n.nspname || '.' || c.relname, c.reltuples::float8, c.relpages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = ANY(%s)
"""
# The most volatile of the functions of that name (i < s < v), in that schema when one is given.
FUNCTION_SQL = """
SELECT max(p.provolatile::text) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = %(name)s AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
"""
OPERATOR_SQL = """
SELECT max(p.provolatile::text) FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode WHERE o.oprname = %s
"""
# How PostgreSQL converts one type into another: b = binary-coercible (no rewrite), f = function, i = I/O.
CAST_SQL = """
SELECT to_regtype(%(old)s) IS NOT NULL AND to_regtype(%(new)s) IS NOT NULL,
       to_regtype(%(old)s) = to_regtype(%(new)s),
       (SELECT c.castmethod::text FROM pg_cast c
        WHERE c.castsource = to_regtype(%(old)s) AND c.casttarget = to_regtype(%(new)s)),
       format_type(to_regtype(%(new)s), NULL)
"""


@dataclass(frozen=True)
class Placement:
    """Where a file sits: its migration, that migration's files in order, and whether it is transactional."""

    migration: str | None   # None: a file no migration applies (linted as a migration of its own)
    module: str | None
    files: tuple[Path, ...]
    transactional: bool


@dataclass(frozen=True)
class Cast:
    known: bool            # both types resolve on the server
    same_type: bool
    method: str | None     # pg_cast.castmethod, None when there is no cast
    target: str | None     # the new type as format_type prints it


class Server:
    """Questions only the target server can answer, asked once each (a live, open connection)."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.version: int = int(conn.info.server_version)
        self._cache: dict[tuple, Any] = {}

    def _one(self, key: tuple, query: str, params: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = self.conn.execute(query, params).fetchone()
        return self._cache[key]

    def function_volatility(self, schema: str | None, name: str) -> str | None:
        return self._one(("f", schema, name), FUNCTION_SQL, {"schema": schema, "name": name})[0]

    def operator_volatility(self, name: str) -> str | None:
        return self._one(("o", name), OPERATOR_SQL, (name,))[0]

    def cast(self, old: str, new: str) -> Cast:
        row = self._one(("c", old, new), CAST_SQL, {"old": old, "new": new})
        return Cast(bool(row[0]), bool(row[1]), row[2], row[3])


@dataclass
class Context:
    catalog: Catalog
    source: str                                   # where the catalog came from, for the report
    schemas: set[str] = field(default_factory=set)  # schemas whose tables the catalog lists in full
    database: str | None = None                   # the target, masked (None: no database)
    server: Server | None = None
    rows: dict[str, float] = field(default_factory=dict)   # qualified table -> estimated rows (live only)
    placements: dict[Path, Placement] = field(default_factory=dict)
    lock_timeout: str = settings.DEFAULT_DDL_LOCK_TIMEOUT
    statement_timeout: str = settings.DEFAULT_STATEMENT_TIMEOUT
    notes: list[str] = field(default_factory=list)

    # -- the catalog before the migration ---------------------------------------------------------
    def table(self, key: str) -> Table | None:
        schema, _, name = key.partition(".")
        return self.catalog.table(schema, name)

    def knows_schema(self, schema: str) -> bool:
        return any(t.schema == schema for t in self.catalog.tables())

    def columns(self, key: str) -> list[Column]:
        schema, _, name = key.partition(".")
        return self.catalog.columns(schema, name)

    def constraints(self, key: str) -> list[Constraint]:
        schema, _, name = key.partition(".")
        return self.catalog.constraints(schema, name)

    def indexes(self, key: str) -> list[Index]:
        schema, _, name = key.partition(".")
        return self.catalog.indexes(schema, name)

    def index_table(self, schema: str, name: str) -> str | None:
        """The table an existing index belongs to."""
        for index in self.catalog.objects("index").values():
            if isinstance(index, Index) and index.schema == schema and index.name == name:
                return f"{index.schema}.{index.table}"
        return None

    def enum_exists(self, key: str) -> bool:
        return key in self.catalog.enums()

    def function(self, schema: str, name: str) -> Function | None:
        """A module function of that name (any arguments): the most volatile one."""
        found = [f for f in self.catalog.objects("function").values()
                 if isinstance(f, Function) and f.schema == schema and f.name.split("(", 1)[0] == name]
        return max(found, key=lambda f: f.volatility) if found else None

    def size(self, key: str) -> str:
        """' (~12,345 rows)' from pg_class.reltuples, when a database was read; '' otherwise."""
        rows = self.rows.get(key)
        if rows is None:
            return ""
        if rows < 0:
            return " (no row estimate: never analyzed)"
        return f" (~{int(rows):,} rows)"

    def placement(self, path: Path) -> Placement:
        return self.placements.get(path.resolve(), Placement(None, None, (path,), True))


# -- building it ----------------------------------------------------------------------------------
def snapshot_catalog(modules: list[str]) -> Catalog:
    """The committed expected catalogs of every module (what sql/ builds), merged."""
    from ..catalog.expected import load_snapshot

    catalog = Catalog()
    for module in modules:
        catalog = catalog.merged(load_snapshot(module))
    return catalog


def live(conn: Any, schemas: list[str], say: Callable[[str], None]) -> tuple[Catalog, dict[str, float]]:
    """The target's catalog of `schemas` and its row estimates; a table lock held elsewhere is waited
    for at most DBTOOL_READ_LOCK_TIMEOUT seconds, then one line."""
    import psycopg

    from ..catalog.read import read_catalog

    wait = float(settings.get("DBTOOL_READ_LOCK_TIMEOUT"))
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(wait * 1000))}ms",))
    try:
        catalog = read_catalog(conn, schemas)
        rows = {key: float(tuples) for key, tuples, _pages in conn.execute(ROWS_SQL, (schemas,)).fetchall()}
    except psycopg.errors.LockNotAvailable:
        raise DbtoolError(f"lint gave up after {wait:g}s waiting for a table lock while reading the catalog "
                          "(--lock-timeout, DBTOOL_READ_LOCK_TIMEOUT): a migration or ALTER TABLE is running") from None
    return catalog, rows


def placements(modules: list[str]) -> dict[Path, Placement]:
    """Every file a migration applies -> its placement (the migrations are read, never run)."""
    from .. import migrate as migrate_lib

    out: dict[Path, Placement] = {}
    for migration in migrate_lib.load(modules):
        files = tuple(p.resolve() for p in migrate_lib.files_of(migration))
        place = Placement(migration.id, migrate_lib.module_of(migration), files, bool(migration.use_transactions))
        for f in files:
            out.setdefault(f, place)
    return out


def default_modules() -> list[str]:
    try:
        return paths.modules()
    except DbtoolError:
        return []
