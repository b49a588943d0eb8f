"""Shared by the benchmarks: a server to use, timing, the ratio table, goals, and the JSON results.

Every bench records what it measured in RESULTS (bench name -> sizes, figures, goals): report()
records each table row as a figure, goal() each goal, size() each size. `python -m bench` writes
RESULTS with the environment to bench/results/<date>.json after the runs (never over an existing
file) and `python -m bench --compare A.json B.json` prints the changes between two runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbtool import config
from dbtool.catalog.expected import scratch_database

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TABLE_SEP = " | "  # between a table's title and an approach, in the names of report()'s figures
FORMAT = 1  # of the results file; --compare refuses another


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


def _caller_bench(depth: int = 2) -> str:
    """`load` for a call made from bench/bench_load.py (the default bench name of report())."""
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return name.rpartition(".")[2].removeprefix("bench_") or "bench"


def report(title: str, rows: list[tuple[str, float]], baseline: str, *, bench: str | None = None) -> None:
    """Print timings side by side with each one's ratio to `baseline`; record each as a figure
    `<title> | <approach>` (seconds) of `bench` (default: the calling bench module's name)."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    print(f"  {'approach':44} {'seconds':>10} {'x ' + baseline:>24}")
    for name, secs in rows:
        print(f"  {name:44} {secs:10.4f} {secs / base:24.2f}")
    bench = bench or _caller_bench()
    for name, secs in rows:
        figure(bench, f"{title}{TABLE_SEP}{name}", round(secs, 6))


# -- goals and recorded figures: every bench ends with one GOAL line per goal ------------------------------

RESULTS: dict[str, dict] = {}  # bench name -> {"figures": {...}, "goals": [...], "sizes": {...}}; written as JSON


def tiny() -> bool:
    """BENCH_TINY=1: the smallest sizes that still run every step (the test suite runs each bench so)."""
    return os.environ.get("BENCH_TINY", "") == "1"


def _entry(bench: str) -> dict:
    entry = RESULTS.setdefault(bench, {"figures": {}, "goals": []})
    entry.setdefault("sizes", {})
    return entry


def figure(bench: str, name: str, value: object) -> None:
    """Record a measured figure (seconds, rows/s, sizes) for the JSON results."""
    _entry(bench)["figures"][name] = value


def size(bench: str, name: str, value: object) -> None:
    """Record a size the bench ran at (rows, tables, repeats): two runs compare only at equal sizes."""
    _entry(bench)["sizes"][name] = value


def goal(bench: str, name: str, ratio: float, op: str, value: float, *, note: str | None = None) -> bool:
    """Print `GOAL <name>: <ratio> (goal <op> <value>) met|not met` and record it.

    `note` follows on the same line after `; `: for a goal not met, the measured floor that explains it.
    """
    met = {"<=": ratio <= value, ">=": ratio >= value}[op]
    print(f"GOAL {name}: {ratio:.2f} (goal {op} {value:g}) {'met' if met else 'not met'}"
          + (f"; {note}" if note else ""))
    record: dict[str, Any] = {"name": name, "ratio": ratio, "op": op, "value": value, "met": met}
    if note:
        record["note"] = note
    _entry(bench)["goals"].append(record)
    return met


# -- results files -------------------------------------------------------------------------------------------

def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("psycopg", "psycopg-binary", "psycopg-c", "sqlalchemy", "duckdb", "numpy", "yoyo-migrations"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        import psycopg

        out["psycopg implementation"] = psycopg.pq.__impl__
    except ImportError:
        pass
    return out


def _server_facts() -> dict[str, Any]:
    """The bench server's version and the settings that move timings (durability, memory)."""
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
             "work_mem", "max_wal_size")
    try:
        target = server()
        with target.connect(autocommit=True, application_name="dbtool-bench") as conn:
            rows = conn.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                                (list(names),)).fetchall()
            version = conn.execute("SELECT version()").fetchone()
    except Exception as exc:  # the results are still worth writing without them
        return {"error": " ".join(str(exc).split())[:300]}
    facts: dict[str, Any] = {"where": _checkout_relative(target.display()), "version": version[0] if version else None}
    facts.update(dict(rows))
    return facts


def _checkout_relative(text: str) -> str:
    """Results are committed: this machine's checkout path is written as <checkout>."""
    from dbtool import paths

    return text.replace(str(paths.root()), "<checkout>")


def environment(load_before: tuple[float, ...] | None = None) -> dict[str, Any]:
    """What the figures depend on: the machine, Python, the PostgreSQL server, dbtool's commit."""
    commit = _run(["git", "rev-parse", "HEAD"])
    changed = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    try:
        load_now: tuple[float, ...] | None = os.getloadavg()
    except OSError:
        load_now = None
    return {
        "machine": {"cores": os.cpu_count(), "ram_bytes": _ram_bytes(),
                    "ram_gb": round((_ram_bytes() or 0) / 2**30, 1) or None, "cpu": _cpu_model(),
                    "platform": platform.platform(),
                    # others' work on a shared machine moves every figure: the load when the run began and ended
                    "load_average_before": list(load_before) if load_before else None,
                    "load_average_after": list(load_now) if load_now else None},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": _checkout_relative(sys.executable), "packages": _versions()},
        "postgresql": _server_facts(),
        "dbtool": {"commit": commit, "modified_files": len(changed.splitlines()) if changed else 0},
    }


def results_path(directory: Path, day: dt.date | None = None) -> Path:
    """<directory>/<date>.json, or <date>-2.json, -3... when taken: an earlier run is never overwritten."""
    stem = (day or dt.date.today()).isoformat()
    path = directory / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.json"
    return path


def write_results(document: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write a results document to a new file of `directory` (created exclusively: never over another)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    while True:
        path = results_path(directory)
        try:
            with open(path, "x", encoding="utf-8") as f:  # a concurrent run taking the same name: try the next
                f.write(text)
            return path
        except FileExistsError:
            continue


# -- comparing two results files -------------------------------------------------------------------------------

def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise SystemExit(f"{path}: not a bench results file of format {FORMAT}")
    return doc


def _short(value: object) -> str:
    if isinstance(value, list):
        return " ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare(path_a: str, path_b: str, out=None) -> int:
    """Print what changed from run A to run B: environment, sizes, each figure and each goal's ratio."""
    out = out or sys.stdout
    a, b = _load(path_a), _load(path_b)

    def say(line: str = "") -> None:
        print(line, file=out)

    say(f"A: {path_a} ({a.get('started', '?')})")
    say(f"B: {path_b} ({b.get('started', '?')})")
    ea, eb = a.get("environment", {}), b.get("environment", {})
    for label, keys in (("cores", ("machine", "cores")), ("RAM GB", ("machine", "ram_gb")),
                        ("load before", ("machine", "load_average_before")),
                        ("python", ("python", "version")), ("PostgreSQL", ("postgresql", "server_version")),
                        ("commit", ("dbtool", "commit"))):
        va, vb = (_short(e.get(keys[0], {}).get(keys[1])) for e in (ea, eb))
        say(f"  {label:12} {va:42} {vb}" + ("" if va == vb else "   (differs)"))
    ba, bb = a.get("benches", {}), b.get("benches", {})
    for bench in sorted(ba.keys() | bb.keys()):
        ra, rb = ba.get(bench, {}), bb.get(bench, {})
        say(f"\n{bench}")
        if not ra or not rb:
            say(f"  only in {'A' if ra else 'B'}")
            continue
        sa, sb = ra.get("sizes", {}), rb.get("sizes", {})
        if sa != sb:
            say(f"  sizes differ: A {sa}  B {sb} (figures below compare unlike runs)")
        fa, fb = ra.get("figures", {}), rb.get("figures", {})
        say(f"  {'figure':60} {'A':>10} {'B':>10} {'B/A':>7}")
        heading = None
        for name in list(fa) + [k for k in fb if k not in fa]:
            title, sep, label = name.rpartition(TABLE_SEP)
            if sep and title != heading:  # a table of report(): its title once, then its rows
                say(f"  {title}")
                heading = title
            shown = f"  {label}" if sep else label
            if name not in fa or name not in fb:
                say(f"  {shown[:60]:60} only in {'A' if name in fa else 'B'}")
                continue
            x, y = _num(fa[name]), _num(fb[name])
            if x is None or y is None:
                if fa[name] != fb[name]:
                    say(f"  {shown[:60]:60} {fa[name]!s:>10} {fb[name]!s:>10}")
                continue
            rel = f"{y / x:7.2f}" if x else "      -"
            say(f"  {shown[:60]:60} {x:10.4g} {y:10.4g} {rel}")
        ga = {g["name"]: g for g in ra.get("goals", [])}
        gb = {g["name"]: g for g in rb.get("goals", [])}
        for name in list(ga) + [n for n in gb if n not in ga]:
            x, y = ga.get(name), gb.get(name)
            if x and y:
                change = y["ratio"] - x["ratio"]
                status = ("met" if y["met"] else "not met") + ("" if x["met"] == y["met"] else
                                                               f" (was {'met' if x['met'] else 'not met'})")
                say(f"  GOAL {name}: {x['ratio']:.2f} -> {y['ratio']:.2f} ({change:+.2f}; goal {y['op']} "
                    f"{y['value']:g}) {status}")
            else:
                g = x or y
                assert g is not None
                say(f"  GOAL {name}: only in {'A' if x else 'B'} ({g['ratio']:.2f})")
    return 0
