"""Connections for applications: a health-checked pool, and a plain connection for scripts.

The pool's sizes default to the chatbot specification's 20 connections plus 40 overflow
(min 20, max 60); DBTOOL_POOL_MIN / DBTOOL_POOL_MAX override them. Every connection handed
out is checked first (ConnectionPool.check_connection: a round trip, broken ones replaced),
as SQLAlchemy's pool_pre_ping did in the specifications.

After a server restart every idle connection is broken at once. psycopg_pool's own checkout loop
(`check=`) throws them away one per attempt, sleeping 1, 2, 4, 8, 16 s in between: with 20 of them
each request timed out (30 s) on five dead connections, and service came back after about 90 s.
Pool.getconn instead checks the connection it takes, and on the first dead one checks every idle
connection at once (pool.check()), so the request waits only for a fresh connection. It waits in
short slices, each of which may start a new connection attempt, and reconnect attempts give up
after `reconnect_timeout` (5 s, not 5 min): no attempt sleeps through the server's return.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from . import config, settings
from .errors import UsageError


def pool_sizes(min_size: int | None = None, max_size: int | None = None) -> tuple[int, int]:
    lo = min_size if min_size is not None else settings.get("DBTOOL_POOL_MIN")
    if max_size is not None:
        hi = max_size
    elif os.environ.get("DBTOOL_POOL_MAX"):
        hi = settings.get("DBTOOL_POOL_MAX")
    else:  # the default maximum grows with a larger minimum
        hi = max(settings.get("DBTOOL_POOL_MAX"), lo)
    if lo < 0 or hi < max(lo, 1):
        raise UsageError(f"pool sizes must satisfy 0 <= min <= max and max >= 1 (got min={lo}, max={hi})")
    return lo, hi


class Pool(ConnectionPool):
    """A ConnectionPool whose checkout gets over a server restart at once (see the module's docstring)."""

    SLICE = 1.0  # seconds a checkout waits before asking again (and so letting the pool start a connection)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        wait = self.timeout if timeout is None else timeout
        deadline = monotonic() + wait
        swept = False
        while True:
            left = deadline - monotonic()
            try:
                if left <= 0:
                    raise PoolTimeout()
                conn = super().getconn(min(left, self.SLICE))
            except PoolTimeout:
                if monotonic() < deadline:
                    continue
                raise PoolTimeout(f"couldn't get a connection after {wait:.2f} sec") from None
            try:
                self.check_connection(conn)
            except Exception:  # noqa: BLE001 - dead: the pool closes it and opens another
                conn.close()
                self.putconn(conn)
                if not swept:  # the others idle beside it died of the same cause (a restart): all at once
                    self.check()
                    swept = True
                continue
            return conn


def make_pool(target: config.Target | None = None, *, min_size: int | None = None, max_size: int | None = None,
              open: bool = True, timeout: float = 30.0, application_name: str = "dbtool-pool",
              reconnect_timeout: float = 5.0, **kwargs) -> ConnectionPool:
    """A psycopg_pool.ConnectionPool (a Pool) on `target` (default: DATABASE_URL, PG*, or the dev cluster).

    Use it as a context manager (`with make_pool() as pool, pool.connection() as conn: ...`) or close() it.
    `reconnect_timeout`: how long one attempt to replace a lost connection keeps retrying (with backoff)
    before the pool lets the next request start a fresh one.
    """
    target = target or config.resolve(None)
    lo, hi = pool_sizes(min_size, max_size)
    return Pool(target.conninfo, min_size=lo, max_size=hi, open=open, timeout=timeout,
                reconnect_timeout=reconnect_timeout, name=application_name,
                kwargs={"application_name": application_name, **kwargs})


@contextmanager
def connection(target: config.Target | None = None, *, autocommit: bool = False,
               application_name: str = "dbtool-script") -> Iterator[psycopg.Connection]:
    """One plain connection for a script: committed on success, rolled back on error, then closed."""
    target = target or config.resolve(None)
    with target.connect(autocommit=autocommit, application_name=application_name) as conn:
        yield conn
