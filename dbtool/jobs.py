"""Scheduled jobs of the chatbot: close expired sessions, roll a day up into metrics_daily, purge old data.

Each job runs in one PostgreSQL transaction that first takes the job's own transaction-level advisory
lock (two-int key LOCK_CLASS, JOB_KEYS[job]; pg_locks shows classid, objid, objsubid = 2), so two
schedulers never run the same job at once, while different jobs run side by side. A second run of a job
polls for the lock for `wait` seconds, then skips: JobBusy (exit 1, as `flock -n` does), naming the holder
as pg_stat_activity shows it (application_name `dbtool jobs <job> host=... pid=...`). The lock ends with
the transaction: on commit, on failure, and when the process dies (the server rolls its transaction back).

Every job is idempotent: running it again changes nothing more (expire-sessions closes what is expired at
that moment, roll-up rewrites the same values for the same day, purge finds nothing older left).

Retention (`purge --older-than AGE`, AGE at least a session's 24-hour TTL). With cutoff = now - AGE:
- a session goes when it is over (closed, or its TTL has passed) and both its creation and its last
  activity are before the cutoff, unless a row of a table hanging directly from it (messages,
  car_interactions, human_handoffs) was created at or after the cutoff: a conversation goes whole, and
  nothing younger than AGE goes with it;
- with the session go the rows that depend on it through ON DELETE CASCADE foreign keys, each table
  counted. Which tables: dbtool.repo.chatbot.personal_data.retention_plan(), derived from the
  [personal data] column tags and the foreign keys of the committed snapshot, never a hand-written list;
- rows that reference a purged session ON DELETE SET NULL stay, detached (qualified_leads: a lead outlives
  its session); users stay (a person is erased on request: `dbtool erase-user`); metrics_daily holds no
  personal data;
- in the DuckDB analytics file, every table with a session_id column (read from DuckDB's own catalog)
  loses the purged sessions' rows, in the same run. DuckDB commits just before PostgreSQL: if DuckDB
  fails, nothing is purged anywhere. A file skipped (--no-duckdb, or absent) is cleaned by the next
  `dbtool analytics sync`, which removes rows PostgreSQL no longer has.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql

from . import lock_wait
from .catalog.expected import load_snapshot
from .errors import DbtoolError, UsageError
from .fetch import fetch_one
from .lock import HOLDER_SQL, application_name, describe_holder, gone_owner
from .repo.chatbot import metrics_daily, personal_data, sessions

if TYPE_CHECKING:
    import duckdb

    from .config import Target

LOCK_CLASS = 0x6462746A  # 'dbtj': jobs (the migration lock is 'dbtl', 1)
JOB_KEYS = {"expire-sessions": 1, "roll-up": 2, "purge": 3}
DEFAULT_LOCK_WAIT = 5.0  # seconds a second run waits before it skips
MIN_AGE = sessions.TTL   # a shorter retention would purge sessions that could still be alive
MAX_AGE = dt.timedelta(days=36500)

R = TypeVar("R")


class JobBusy(DbtoolError):
    """Another run holds the job's lock: this run skipped, nothing done (exit 1)."""

    def __init__(self, job: str, holder: str, waited: float):
        super().__init__(f"jobs {job}: skipped after waiting {waited:g}s, nothing done: another run holds "
                         f"its lock: {holder}")
        self.job, self.holder = job, holder


def lock_job(conn: psycopg.Connection, job: str, *, wait: float = DEFAULT_LOCK_WAIT) -> None:
    """Take the job's transaction-level lock inside the caller's transaction, polling up to `wait` seconds."""
    key = (LOCK_CLASS, JOB_KEYS[job])
    deadline = time.monotonic() + wait
    while not fetch_one(conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", key))[0]:
        if time.monotonic() >= deadline:
            row = conn.execute(HOLDER_SQL, key).fetchone()
            holder = describe_holder(row)
            if row and (dead := gone_owner(row[1])) is not None:  # a killed run's statement, still running
                holder += (f"; its process, pid {dead} on this machine, is gone: the server ends the session when "
                           f"its statement finishes, or now with SELECT pg_terminate_backend({row[0]})")
            raise JobBusy(job, holder, wait)
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def run(target: Target, job: str, work: Callable[[psycopg.Connection], R], *,
        wait: float = DEFAULT_LOCK_WAIT, lock_timeout: float | None = None) -> R:
    """work(conn) in one transaction holding the job's lock; committed when it returns.

    Each statement waits at most `lock_timeout` seconds (default DBTOOL_DATA_LOCK_TIMEOUT, 10 s) for a table or
    row lock another session holds; then the transaction is rolled back (nothing done, in either store: DuckDB
    commits last) and lock_wait.TableLockTimeout names who holds it.
    """
    table_wait = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
    with target.connect(application_name=application_name(f"jobs {job}")) as conn:
        lock_wait.limit_session(conn, table_wait)
        with lock_wait.naming_blockers(conn, table_wait, command=f"jobs {job}", schemas=["chatbot"],
                                       modes=lock_wait.BLOCKS_WRITES, setting=lock_wait.DATA_SETTING,
                                       outcome="nothing done", row_locks=True), conn.transaction():
            lock_job(conn, job, wait=wait)
            return work(conn)


# -- the jobs ---------------------------------------------------------------------------------------------
def expire_sessions(conn: psycopg.Connection, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Close every active session whose 24-hour TTL has passed; {table: sessions closed}."""
    return {sessions.T.qualified: sessions.expire_stale(conn, now=now)}


METRICS = ("total_messages", "total_sessions", "total_users", "total_qualified_leads", "avg_response_time_ms",
           "nlp_accuracy", "conversion_rate")


def roll_up(conn: psycopg.Connection, *, day: dt.date) -> dict[str, Any]:
    """Store `day`'s metrics (an upsert: the same values again on a re-run); the metrics."""
    row = metrics_daily.roll_up(conn, day=day)
    return {name: getattr(row, name) for name in METRICS}


_AGE = re.compile(r"\s*(\d+)\s*(h|d|w)\s*", re.I)
_UNIT = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


def parse_age(text: str) -> dt.timedelta:
    """`36h`, `90d`, `26w` (hours, days, weeks); at least MIN_AGE. ValueError says what is wrong."""
    match = _AGE.fullmatch(text)
    if not match:
        raise ValueError("give a whole number and a unit: h (hours), d (days) or w (weeks), e.g. 90d")
    try:
        age = int(match.group(1)) * _UNIT[match.group(2).lower()]
    except OverflowError:
        age = MAX_AGE * 2
    if age > MAX_AGE:
        raise ValueError(f"give at most {MAX_AGE.days}d (100 years)")
    if age < MIN_AGE:
        raise ValueError(f"give at least {MIN_AGE.days * 24}h: a session lives {MIN_AGE.days * 24} hours after "
                         "its last activity")
    return age


@dataclass(frozen=True)
class PurgeResult:
    cutoff: dt.datetime
    counts: dict[str, int]                 # rows purged (or that a dry run would purge) per table, both stores
    detached: dict[str, int]               # rows kept that lose their reference to a purged session
    kept: dict[str, str] = field(default_factory=dict)  # tables of personal data the rule keeps, and why
    sessions: tuple[str, ...] = ()         # the purged sessions' keys (chatbot.sessions.session_id)


_SESSIONS_OVER = sql.SQL("""
SELECT {key}, session_id FROM {root}
WHERE (NOT is_active OR expires_at <= %(now)s) AND last_activity_at < %(cutoff)s AND created_at < %(cutoff)s
ORDER BY {key}""")


def purge(conn: psycopg.Connection, *, older_than: dt.timedelta, now: dt.datetime | None = None,
          dry_run: bool = False, duck: duckdb.DuckDBPyConnection | None = None) -> PurgeResult:
    """Apply the retention rule (module docstring) in the caller's transaction; counts per table.

    dry_run counts what would go and changes nothing, in either store.
    """
    if older_than < MIN_AGE:
        raise UsageError(f"retention {older_than} is shorter than a session's TTL ({MIN_AGE})")
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - older_than
    plan = personal_data.retention_plan()
    params = {"now": now, "cutoff": cutoff}
    select = _SESSIONS_OVER.format(key=sql.Identifier(plan.key), root=sql.Identifier(*plan.root.split(".", 1)))
    if not dry_run:
        select += sql.SQL(" FOR UPDATE")  # a concurrent writer waits, then finds the session gone
    found: dict[int, str] = dict(conn.execute(select, params).fetchall())
    for key in _young(conn, plan, list(found), cutoff):
        del found[key]
    keys = sorted(found)
    detached = plan.count_detached(conn, keys)
    counts = plan.count(conn, keys) if dry_run else plan.delete(conn, keys)
    session_keys = tuple(found[k] for k in keys)
    if duck is not None:
        counts.update(purge_duckdb(duck, session_keys, dry_run=dry_run))
    return PurgeResult(cutoff, counts, detached, dict(plan.kept), session_keys)


def _young(conn: psycopg.Connection, plan: personal_data.Plan, keys: Sequence[int],
           cutoff: dt.datetime) -> set[int]:
    """Root keys with a row created at or after the cutoff in a table hanging directly from the root."""
    catalog = load_snapshot(plan.root.split(".", 1)[0])
    young: set[int] = set()
    for links in plan.links.values():
        for link in links:
            schema, table = link.child.split(".", 1)
            if link.parent != plan.root or len(link.columns) != 1 or link.ref_columns != (plan.key,) \
                    or "created_at" not in {c.name for c in catalog.columns(schema, table)}:
                continue
            col = sql.Identifier(link.columns[0])
            young |= {r[0] for r in conn.execute(
                sql.SQL("SELECT DISTINCT {col} FROM {t} WHERE {col} = ANY(%(keys)s) AND created_at >= %(cutoff)s")
                .format(col=col, t=sql.Identifier(schema, table)), {"keys": list(keys), "cutoff": cutoff})}
    return young


def purge_duckdb(duck: duckdb.DuckDBPyConnection, session_keys: Sequence[str], *,
                 dry_run: bool = False) -> dict[str, int]:
    """Delete (or count) the rows of these sessions in every DuckDB table with a session_id column;
    {"duckdb.<table>": rows}. One DuckDB transaction."""
    import duckdb

    from .analytics.db import duck_error, transaction
    from .analytics.embeddings import bump_version

    try:
        tables = [r[0] for r in duck.execute(
            "SELECT DISTINCT table_name FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = current_schema() AND column_name = 'session_id' ORDER BY 1").fetchall()]
        with transaction(duck, commit=not dry_run):
            duck.execute("CREATE OR REPLACE TEMP TABLE dbtool_purge_keys AS SELECT unnest(?::VARCHAR[]) AS session_id",
                         [list(session_keys)])
            verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
            counts = {f"duckdb.{t}": int(duck.execute(
                f'{verb} "{_quoted(t)}" WHERE session_id IN (SELECT session_id FROM dbtool_purge_keys)'
            ).fetchall()[0][0]) for t in tables}  # names from DuckDB's catalog, quoted; values bound
            duck.execute("DROP TABLE dbtool_purge_keys")
            if not dry_run and counts.get("duckdb.message_embeddings"):
                bump_version(duck, deleted_only=True)  # the search sidecar is rewritten without the purged vectors
    except duckdb.Error as exc:
        raise duck_error("DuckDB purge failed, nothing purged", exc) from None
    return counts


def _quoted(name: str) -> str:
    return name.replace('"', '""')
