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


# -- goals and recorded figures: every bench ends with one GOAL line per goal ------------------------------

RESULTS: dict[str, dict] = {}  # bench name -> {"figures": {...}, "goals": [...]}; `make bench` writes it as JSON


def tiny() -> bool:
    """BENCH_TINY=1: the smallest sizes that still run every step (the test suite runs each bench so)."""
    import os

    return os.environ.get("BENCH_TINY", "") == "1"


def figure(bench: str, name: str, value: object) -> None:
    """Record a measured figure (seconds, rows/s, sizes) for the JSON results."""
    RESULTS.setdefault(bench, {"figures": {}, "goals": []})["figures"][name] = value


def goal(bench: str, name: str, ratio: float, op: str, value: float) -> bool:
    """Print `GOAL <name>: <ratio> (goal <op> <value>) met|not met` and record it."""
    met = {"<=": ratio <= value, ">=": ratio >= value}[op]
    print(f"GOAL {name}: {ratio:.2f} (goal {op} {value:g}) {'met' if met else 'not met'}")
    RESULTS.setdefault(bench, {"figures": {}, "goals": []})["goals"].append(
        {"name": name, "ratio": ratio, "op": op, "value": value, "met": met})
    return met
