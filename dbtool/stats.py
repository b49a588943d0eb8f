"""Rows and size of every table of the chosen modules, set-based.

Sizes come from one catalog query. Row counts are exact (count(*)) for tables whose heap is
below DBTOOL_STATS_EXACT_MAX_BYTES (64 MiB), all in one UNION ALL statement; bigger tables report the planner's
estimate (pg_class.reltuples, as of the last VACUUM/ANALYZE), and say so. Both wait at most
DBTOOL_READ_LOCK_TIMEOUT (10 s) for a table lock (pg_relation_size and count(*) need ACCESS SHARE),
then stop naming who holds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql

from . import lock_wait, settings
from .errors import DbtoolError

_SIZES = """
SELECT n.nspname, c.relname, c.reltuples::bigint, pg_relation_size(c.oid), pg_total_relation_size(c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
ORDER BY n.nspname, c.relname
"""


@dataclass(frozen=True)
class TableStats:
    module: str
    table: str
    rows: int | None        # None: estimated but the table was never analysed
    exact: bool
    total_bytes: int        # heap + indexes + TOAST

    def as_json(self) -> dict:
        return {**asdict(self), "method": "exact" if self.exact else "estimated"}


def table_stats(conn: psycopg.Connection, modules: list[str], *,
                exact_max_bytes: int | None = None, lock_timeout: float | None = None) -> list[TableStats]:
    """Per table: rows (exact, or estimated for big tables) and total size. Two statements in all.

    A table lock held longer than `lock_timeout` seconds (default DBTOOL_READ_LOCK_TIMEOUT) stops it with
    lock_wait.TableLockTimeout naming the holder.
    """
    if exact_max_bytes is None:
        exact_max_bytes = int(settings.get("DBTOOL_STATS_EXACT_MAX_BYTES"))
    wait = lock_wait.seconds(lock_timeout)
    with lock_wait.bounded(conn, wait, command="stats", schemas=list(modules)):
        return _table_stats(conn, modules, exact_max_bytes)


def _table_stats(conn: psycopg.Connection, modules: list[str], exact_max_bytes: int) -> list[TableStats]:
    rel = conn.execute(_SIZES, (list(modules),)).fetchall()
    small = [(s, t) for s, t, _est, heap, _total in rel if heap <= exact_max_bytes]
    exact: dict[tuple[str, str], int] = {}
    if small:
        # Names are bound values in the select list; only the FROM needs them as identifiers.
        counts = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT %s::text, %s::text, count(*) FROM {}").format(sql.Identifier(s, t)) for s, t in small)
        params = [name for pair in small for name in pair]
        exact = {(s, t): n for s, t, n in conn.execute(counts, params).fetchall()}
    out = []
    for s, t, est, _heap, total in rel:
        if (s, t) in exact:
            out.append(TableStats(s, t, exact[(s, t)], True, total))
        else:
            out.append(TableStats(s, t, est if est >= 0 else None, False, total))
    return out


def row_counts(conn: psycopg.Connection, module: str) -> dict[str, int]:
    """Exact row count of every table of a module (the planning spec's "table statistics")."""
    counts: dict[str, int] = {}
    for s in table_stats(conn, [module], exact_max_bytes=2**62):
        if s.rows is None:  # cannot happen when every table is counted exactly
            raise DbtoolError(f"{s.module}.{s.table}: no exact row count")
        counts[s.table] = s.rows
    return counts


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
