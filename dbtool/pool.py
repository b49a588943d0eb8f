"""Connections for applications: a health-checked pool, and a plain connection for scripts.

The pool's sizes default to the chatbot specification's 20 connections plus 40 overflow
(min 20, max 60); DBTOOL_POOL_MIN / DBTOOL_POOL_MAX override them. Every connection handed
out is checked first (ConnectionPool.check_connection: a round trip, broken ones replaced),
as SQLAlchemy's pool_pre_ping did in the specifications.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

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


def make_pool(target: config.Target | None = None, *, min_size: int | None = None, max_size: int | None = None,
              open: bool = True, timeout: float = 30.0, application_name: str = "dbtool-pool",
              **kwargs) -> ConnectionPool:
    """A psycopg_pool.ConnectionPool on `target` (default: DATABASE_URL, PG*, or the dev cluster).

    Use it as a context manager (`with make_pool() as pool, pool.connection() as conn: ...`) or close() it.
    """
    target = target or config.resolve(None)
    lo, hi = pool_sizes(min_size, max_size)
    return ConnectionPool(target.conninfo, min_size=lo, max_size=hi, open=open, timeout=timeout,
                          check=ConnectionPool.check_connection, name=application_name,
                          kwargs={"application_name": application_name, **kwargs})


@contextmanager
def connection(target: config.Target | None = None, *, autocommit: bool = False,
               application_name: str = "dbtool-script") -> Iterator[psycopg.Connection]:
    """One plain connection for a script: committed on success, rolled back on error, then closed."""
    target = target or config.resolve(None)
    with target.connect(autocommit=autocommit, application_name=application_name) as conn:
        yield conn
