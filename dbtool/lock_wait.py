"""Commands wait for a table lock only so long, then say who holds it.

validate, stats and smoke take ACCESS SHARE on module tables (their reads, and catalog functions
such as pg_get_expr that open the table) or ROW EXCLUSIVE (smoke's rolled-back writes). Behind a
session holding ACCESS EXCLUSIVE (ALTER TABLE, LOCK TABLE, a migration) they would wait without
end and without a word. They run with lock_timeout (DBTOOL_READ_LOCK_TIMEOUT, `--lock-timeout`,
default 10 s); when it fires, the run stops in one line naming the sessions that hold, or queue
for, a conflicting lock on the modules' tables (pg_locks): by then pg_blocking_pids() of our own
session has nothing left to say.

The commands that read or change rows (backup and restore through pg_dump / pg_restore, seed,
erase-user, analytics sync, the jobs) do the same with DBTOOL_DATA_LOCK_TIMEOUT (`--lock-timeout`,
default 10 s): their transaction is rolled back, so nothing changed. A row lock (another transaction
updating the same rows) ends the wait too; no table lock names its holder then, so the sessions in a
transaction that have written to those tables are named as the ones that may hold it.
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
# What blocks ACCESS EXCLUSIVE (DROP, TRUNCATE, ALTER TABLE): every table lock.
BLOCKS_ALL = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", *BLOCKS_WRITES)

# Every schema of the database but PostgreSQL's own: what a whole-database command (backup, restore) touches.
USER_SCHEMAS_SQL = """
SELECT coalesce(array_agg(nspname::text ORDER BY nspname), '{}') FROM pg_namespace
WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
"""

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


# Sessions that may hold row locks: in a transaction, having written to (or locked rows of) a table.
ROW_LOCKERS_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120),
       string_agg(DISTINCT 'holds ' || l.mode || ' on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                  || ' (may hold the row lock)', ', ')
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() AND c.relkind IN ('r', 'p')
  AND l.mode IN ('RowShareLock', 'RowExclusiveLock') AND a.xact_start IS NOT NULL
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname = ANY(%s)
GROUP BY 1, 2, 3, 4 ORDER BY 1
"""

# Who blocks one waiting session (pid %(waiter)s), and what each holds on the tables it waits for: asked while
# it still waits (pg_blocking_pids), e.g. by a watcher before it cancels a child process's statement.
WAITER_BLOCKERS_SQL = """
SELECT b.pid, coalesce(nullif(b.application_name, ''), '?'), coalesce(b.state, '?'),
       left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 120),
       coalesce((SELECT string_agg(DISTINCT CASE WHEN l.granted THEN 'holds ' ELSE 'queues for ' END || l.mode
                                   || ' on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), ', ')
                 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE l.pid = b.pid AND l.locktype = 'relation'
                   AND l.relation IN (SELECT w.relation FROM pg_locks w WHERE w.pid = %(waiter)s AND NOT w.granted)),
                'holds a lock it waits for')
FROM unnest(pg_blocking_pids(%(waiter)s)) AS bp(pid) JOIN pg_stat_activity b ON b.pid = bp.pid
ORDER BY 1
"""

READ_SETTING = "DBTOOL_READ_LOCK_TIMEOUT"   # validate, stats, smoke, status
DATA_SETTING = "DBTOOL_DATA_LOCK_TIMEOUT"   # backup, restore, seed, erase-user, analytics sync, jobs


class TableLockTimeout(DbtoolError):
    """A command gave up waiting for a table lock (exit 1), naming who holds it; nothing was changed."""


def seconds(given: float | None = None, *, setting: str = READ_SETTING) -> float:
    """The lock wait to use: `given`, else the setting (or its --lock-timeout), else 10 s."""
    return float(settings.get(setting) if given is None else given)


def message(command: str, wait: float, blockers: str, *, setting: str = READ_SETTING, outcome: str = "") -> str:
    """The one line of a lock timeout: who gave up after how long, which knob sets it, who holds the lock."""
    return (f"{command} gave up after {wait:g}s waiting for a table lock (--lock-timeout, {setting}): {blockers}"
            + (f"; {outcome}" if outcome else ""))


def timeout_ms(wait: float) -> int:
    """`wait` seconds as the whole milliseconds PostgreSQL settings take (at least 1)."""
    return max(1, round(wait * 1000))


def set_lock_timeout(conn: psycopg.Connection, wait: float, *, local: bool) -> None:
    """lock_timeout for this transaction (local=True) or this session; a bound value, in milliseconds."""
    conn.execute("SELECT set_config('lock_timeout', %s, %s)", (f"{timeout_ms(wait)}ms", local))


def limit_session(conn: psycopg.Connection, wait: float) -> None:
    """On a connection the command opened itself and nothing else is pending: every statement waits at most
    `wait` seconds for a lock."""
    set_lock_timeout(conn, wait, local=False)
    if not conn.autocommit:
        conn.commit()


@contextmanager
def naming_blockers(conn: psycopg.Connection, wait: float, *, command: str, schemas: list[str],
                    modes: tuple[str, ...] = BLOCKS_READS, setting: str = READ_SETTING,
                    outcome: str = "", row_locks: bool = False) -> Iterator[None]:
    """A lock timeout inside becomes TableLockTimeout: one line naming who holds what on `schemas`' tables
    (`outcome`, e.g. "nothing was changed", ends it; row_locks: see blockers())."""
    try:
        yield
    except psycopg.errors.LockNotAvailable:
        raise TableLockTimeout(message(command, wait, blockers(conn, schemas, modes, row_locks=row_locks),
                                       setting=setting, outcome=outcome)) from None


@contextmanager
def bounded(conn: psycopg.Connection, wait: float, *, command: str, schemas: list[str],
            modes: tuple[str, ...] = BLOCKS_READS, setting: str = READ_SETTING,
            outcome: str = "", row_locks: bool = False) -> Iterator[None]:
    """The statements inside run in a transaction (a savepoint in the caller's) whose lock_timeout is `wait`;
    the caller's own lock_timeout is back afterwards."""
    with naming_blockers(conn, wait, command=command, schemas=schemas, modes=modes, setting=setting,
                         outcome=outcome, row_locks=row_locks), conn.transaction():
        previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        set_lock_timeout(conn, wait, local=True)
        yield
        if previous is not None:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (previous[0],))


def blockers(conn: psycopg.Connection, schemas: list[str], modes: tuple[str, ...] = BLOCKS_READS, *,
             row_locks: bool = False) -> str:
    """Who holds (or queues for) a lock in `modes` on a table of `schemas`, in one line. With row_locks (a
    command that writes or locks rows), when nobody does: the sessions in a transaction that wrote to (or
    locked rows of) those tables, as the ones that may hold the row lock."""
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()  # the timeout aborted the transaction: nothing of it can be kept anyway
        rows = conn.execute(BLOCKERS_SQL, (list(modes), list(schemas))).fetchall()
        if not rows and row_locks:
            rows = conn.execute(ROW_LOCKERS_SQL, (list(schemas),)).fetchall()
    except psycopg.Error as exc:
        return f"could not read who holds it ({' '.join(str(exc).split())[:120]})"
    if not rows:
        return "no session holds a conflicting table lock any more (it has just finished, or it was a row lock)"
    return _line(rows)


def blockers_of(conn: psycopg.Connection, waiter: int) -> str:
    """Who blocks the session `waiter` now, in one line (as blockers() says it)."""
    rows = conn.execute(WAITER_BLOCKERS_SQL, {"waiter": waiter}).fetchall()
    if not rows:
        return "no session blocks it any more (it has just finished)"
    return _line(rows)


def _line(rows) -> str:
    """Blocker rows (pid, application_name, state, query, locks) in one line."""
    return "; ".join(f"pid {pid} ({app}, {state}) {locks}: {query}" for pid, app, state, query, locks in rows)
