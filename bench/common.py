"""Shared by the benchmarks: a server to use, timing, and the ratio table."""

from __future__ import annotations

import time
from contextlib import contextmanager

from dbtool import config
from dbtool.catalog.expected import scratch_database


def server() -> config.Target:
    """DATABASE_URL / PG* if set, else the local dev cluster (started on demand)."""
    return config.resolve(None)


@contextmanager
def scratch(prefix: str):
    with scratch_database(server(), prefix=f"bench_{prefix}") as target:
        yield target


def timed(fn, *args, repeat: int = 1, **kw) -> tuple[float, object]:
    """Best wall time of `repeat` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, result


def report(title: str, rows: list[tuple[str, float]], baseline: str) -> None:
    """Print timings side by side with each one's ratio to `baseline`."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    print(f"  {'approach':44} {'seconds':>10} {'x ' + baseline:>24}")
    for name, secs in rows:
        print(f"  {name:44} {secs:10.4f} {secs / base:24.2f}")
