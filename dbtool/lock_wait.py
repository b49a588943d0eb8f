"""Read-only commands wait for a table lock only so long, then say who holds it.

validate, stats and smoke take ACCESS SHARE on module tables (their reads, and catalog functions
such as pg_get_expr that open the table) or ROW EXCLUSIVE (smoke's rolled-back writes). Behind a
session holding ACCESS EXCLUSIVE (ALTER TABLE, LOCK TABLE, a migration) they would wait without
end and without a word. They run with lock_timeout (DBTOOL_READ_LOCK_TIMEOUT, `--lock-timeout`,
default 10 s); when it fires, the run stops in one line naming the sessions that hold, or queue
for, a conflicting lock on the modules' tables (pg_locks): by then pg_blocking_pids() of our own
session has nothing left to say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from . import settings
from .errors import DbtoolError

# PostgreSQL's table lock conflicts: what blocks ACCESS SHARE, and what blocks ROW EXCLUSIVE.
BLOCKS_READS = ("AccessExclusiveLock",)
BLOCKS_WRITES = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

BLOCKERS_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120),
       string_agg(DISTINCT CASE WHEN l.granted THEN 'holds ' ELSE 'queues for ' END || l.mode || ' on '
                  || quote_ident(n.nspname) || '.' || quote_ident(c.relname), ', ')
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid() AND l.mode = ANY(%s)
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (n.nspname = ANY(%s) OR n.nspname IN ('pg_catalog', 'dbtool') OR c.relname LIKE '\\_yoyo%%')
GROUP BY 1, 2, 3, 4 ORDER BY 1
"""


class TableLockTimeout(DbtoolError):
    """A read-only command gave up waiting for a table lock (exit 1)."""


def seconds(given: float | None = None) -> float:
    """The lock wait to use: `given`, else DBTOOL_READ_LOCK_TIMEOUT (or --lock-timeout), else 10 s."""
    return float(settings.get("DBTOOL_READ_LOCK_TIMEOUT") if given is None else given)


def set_lock_timeout(conn: psycopg.Connection, wait: float, *, local: bool) -> None:
    """lock_timeout for this transaction (local=True) or this session; a bound value, in milliseconds."""
    conn.execute("SELECT set_config('lock_timeout', %s, %s)", (f"{max(1, round(wait * 1000))}ms", local))


def limit_session(conn: psycopg.Connection, wait: float) -> None:
    """On a connection the command opened itself and nothing else is pending: every statement waits at most
    `wait` seconds for a lock."""
    set_lock_timeout(conn, wait, local=False)
    if not conn.autocommit:
        conn.commit()


@contextmanager
def naming_blockers(conn: psycopg.Connection, wait: float, *, command: str, schemas: list[str],
                    modes: tuple[str, ...] = BLOCKS_READS) -> Iterator[None]:
    """A lock timeout inside becomes TableLockTimeout: one line naming who holds what on `schemas`' tables."""
    try:
        yield
    except psycopg.errors.LockNotAvailable:
        raise TableLockTimeout(f"{command} gave up after {wait:g}s waiting for a table lock "
                               f"(--lock-timeout, DBTOOL_READ_LOCK_TIMEOUT): {_blockers(conn, schemas, modes)}"
                               ) from None


@contextmanager
def bounded(conn: psycopg.Connection, wait: float, *, command: str, schemas: list[str],
            modes: tuple[str, ...] = BLOCKS_READS) -> Iterator[None]:
    """The statements inside run in a transaction (a savepoint in the caller's) whose lock_timeout is `wait`;
    the caller's own lock_timeout is back afterwards."""
    with naming_blockers(conn, wait, command=command, schemas=schemas, modes=modes), conn.transaction():
        previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        set_lock_timeout(conn, wait, local=True)
        yield
        if previous is not None:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (previous[0],))


def _blockers(conn: psycopg.Connection, schemas: list[str], modes: tuple[str, ...]) -> str:
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()  # the timeout aborted the transaction: nothing of it can be kept anyway
        rows = conn.execute(BLOCKERS_SQL, (list(modes), list(schemas))).fetchall()
    except psycopg.Error as exc:
        return f"could not read who holds it ({' '.join(str(exc).split())[:120]})"
    if not rows:
        return "no session holds a conflicting table lock any more (it has just finished, or it was a row lock)"
    return "; ".join(f"pid {pid} ({app}, {state}) {locks}: {query}" for pid, app, state, query, locks in rows)
