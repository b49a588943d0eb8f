"""The DDL session of bench_online: a short lock_timeout, retried with backoff and jitter.

This is what `migrate --lock-retries N` does for a migration, applied here to each step of a
multi-step change: a step that cannot get its lock within lock_timeout gives up (so the writers
queued behind it wait at most that long), undoes what it left behind (an INVALID index from a failed
CREATE INDEX CONCURRENTLY), sleeps and tries again. The pauses are dbtool.migrate.retry_delay's, the
schedule of --lock-retries (exponential backoff with jitter: 0.5-1 s, 1-2 s, ...); the loop is here
because migrate retries a whole migration, and the bench retries each step of one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import psycopg
from psycopg import errors, sql

from dbtool.migrate import retry_delay

Statement = sql.Composable | str


def set_timeouts(conn: psycopg.Connection, *, lock_timeout: str, statement_timeout: str = "0") -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                 (lock_timeout, statement_timeout))


def retrying(conn: psycopg.Connection, stmt: Statement, *, retries: int,
             cleanup: Callable[[psycopg.Connection], None] | None = None, rnd: random.Random | None = None) -> int:
    """Execute `stmt` (autocommit connection, its lock_timeout already set); on lock_timeout, run
    `cleanup`, sleep (retry_delay) and retry, at most `retries` times.
    Returns how many retries it took; re-raises the last lock_timeout when they are used up."""
    rnd = rnd or random.Random()
    for attempt in range(retries + 1):
        try:
            conn.execute(stmt)
            return attempt
        except errors.LockNotAvailable:
            if cleanup:
                cleanup(conn)
            if attempt == retries:
                raise
            time.sleep(retry_delay(attempt + 1, rnd))
    raise AssertionError("unreachable")
