"""Demo rows: sql/seed/<module>.sql adds them (idempotent), sql/seed/<module>.clear.sql removes only them.

Both are plain SQL files that psql runs as they are (`psql -X -1 -v ON_ERROR_STOP=1 -f ...`); here each
runs in one transaction over the library's connection, so a failing file changes nothing. Their shared
functions (sql/seed/_seed_functions.sql, `\\ir`-included) record every row the seed inserts in
dbtool.seeded_row, in the seed's own transaction, with every column's value; the clear removes a row only
when it is recorded there, still holds those values and nothing references it (children first), and
returns per table what it removed and what it kept, and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from . import lock_wait, paths
from .errors import DbtoolError, first_line
from .fetch import fetch_one

INCLUDE = re.compile(r"^\\ir[ \t]+(\S+)[ \t]*$", re.M)  # psql's \ir, the one meta-command seed files use


class SeedError(DbtoolError):
    """A seed file failed; the database was left as it was."""


@dataclass(frozen=True)
class Cleared:
    """What `seed --clear` did to one table."""

    table: str
    removed: int
    changed: int      # kept: recorded as the seed's, but a value differs from what the seed inserted
    not_seeded: int   # kept: the seed found the key taken and inserted nothing (the row is someone else's)
    referenced: int   # kept: still as seeded, but rows that stay reference it

    @property
    def kept(self) -> int:
        return self.changed + self.not_seeded + self.referenced

    def line(self) -> str:
        why = [f"{n} {reason}" for n, reason in ((self.changed, "changed since seeded"),
                                                 (self.not_seeded, "not inserted by the seed"),
                                                 (self.referenced, "still referenced by rows that stay")) if n]
        return f"{self.table}: removed {self.removed}, kept {self.kept}" + (f": {', '.join(why)}" if why else "")


@dataclass
class Outcome:
    path: Path
    cleared: list[Cleared] = field(default_factory=list)  # --clear only: one entry per table with recorded rows


def seed_file(module: str, *, clear: bool = False) -> Path:
    return paths.sql_dir() / "seed" / f"{module}{'.clear' if clear else ''}.sql"


def read_seed_sql(path: Path) -> str:
    """The file's SQL with its `\\ir` includes inlined, as psql would run it."""
    folder = path.parent.resolve()

    def include(m: re.Match) -> str:
        target = (path.parent / m.group(1)).resolve()
        if target.parent != folder:
            raise SeedError(f"{path.name}: \\ir {m.group(1)}: only files of {path.parent.name}/ may be included")
        if not target.exists():
            raise SeedError(f"{path.name}: \\ir {m.group(1)}: no such file")
        return read_seed_sql(target)

    return INCLUDE.sub(include, path.read_text(encoding="utf-8"))


def apply(conn: psycopg.Connection, module: str, *, clear: bool = False, lock_timeout: float | None = None) -> Outcome:
    """Run the module's seed (or clear) file in one transaction.

    Each statement waits at most `lock_timeout` seconds (default DBTOOL_DATA_LOCK_TIMEOUT, 10 s) for a lock;
    then the transaction is rolled back and lock_wait.TableLockTimeout names who holds it.
    """
    path = seed_file(module, clear=clear)
    if not path.exists():
        raise SeedError(f"no seed file {path}")
    text = read_seed_sql(path)
    wait = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
    command = "seed --clear" if clear else "seed"
    try:
        # Every module's tables: --clear reads the tables that reference a seeded row, wherever they are.
        with lock_wait.bounded(conn, wait, command=command, schemas=paths.modules(), modes=lock_wait.BLOCKS_WRITES,
                               setting=lock_wait.DATA_SETTING, outcome="nothing changed", row_locks=True):
            cur = conn.execute(text)  # no parameters: the file may hold many statements
            rows = _last_result(cur)
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
        raise SeedError(f"{path.name}: {first_line(exc)} (is the {module} module migrated? run `dbtool migrate`)") \
            from None
    except psycopg.Error as exc:
        raise SeedError(f"{path.name}: {first_line(exc)}; nothing changed", sqlstate=exc.sqlstate) from None
    if not clear:
        return Outcome(path)
    return Outcome(path, sorted((Cleared(str(t), *(int(n) for n in counts)) for t, *counts in rows),
                                key=lambda c: c.table))


def _last_result(cur: psycopg.Cursor) -> list[tuple]:
    rows = cur.fetchall() if cur.description else []
    while cur.nextset():
        if cur.description:
            rows = cur.fetchall()
    return rows


def forget_dropped(conn: psycopg.Connection) -> int:
    """Drop the records of seed rows whose table is gone (rollback, reset); in the caller's transaction."""
    if not fetch_one(conn.execute("SELECT to_regclass('dbtool.seeded_row')"))[0]:
        return 0
    return conn.execute("DELETE FROM dbtool.seeded_row s WHERE to_regclass("
                        "format('%I.%I', s.schema_name, s.table_name)) IS NULL").rowcount
