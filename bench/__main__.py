"""Run every benchmark (or those named: python -m bench validate load), then write the results as JSON.

  python -m bench [NAME ...]          run bench/bench_<NAME>.py (all when none is named); each ends with
                                      its GOAL lines; the results go to bench/results/<date>.json
  python -m bench --no-results ...    the same without writing a results file
  python -m bench --compare A.json B.json
                                      what changed from run A to run B: sizes, figures, goal ratios

A tiny run (BENCH_TINY=1, as the test suite runs every bench) writes its results only where
BENCH_RESULTS_DIR says: its figures mean nothing, and bench/results/ holds the committed runs.
A bench that fails is reported (traceback) and recorded; the others still run; the exit status is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench import common


def modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benches to run (load, validate, ...); default: all")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two results files")
    parser.add_argument("--no-results", action="store_true", help="write no results file")
    args = parser.parse_args(argv)
    if args.compare:
        return common.compare(*args.compare)

    names = modules()
    unknown = [n for n in args.names if f"bench_{n}" not in names]
    if unknown:
        parser.error(f"no bench {', '.join(unknown)} (there are: {', '.join(n[6:] for n in names)})")
    chosen = [n for n in names if not args.names or n.removeprefix("bench_") in args.names]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = dt.datetime.now(dt.timezone.utc)
    runs: dict[str, dict] = {}
    for name in chosen:
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").run()
        except BaseException as exc:  # one bench failing must not lose the others' results
            if isinstance(exc, KeyboardInterrupt):
                raise
            traceback.print_exc()
            print(f"\nbench {name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            runs[name] = {"ok": False, "seconds": round(time.perf_counter() - t0, 1),
                          "error": f"{type(exc).__name__}: {exc}"[:2000]}
        else:
            runs[name] = {"ok": True, "seconds": round(time.perf_counter() - t0, 1)}
        sys.stdout.flush()

    goals = [(bench, g) for bench, entry in common.RESULTS.items() for g in entry.get("goals", [])]
    unmet = [f"{g['name']} ({bench})" for bench, g in goals if not g["met"]]
    print(f"\n{len(goals) - len(unmet)} of {len(goals)} goals met"
          + (f"; not met: {'; '.join(unmet)}" if unmet else ""))

    directory = os.environ.get("BENCH_RESULTS_DIR")
    if not args.no_results and (directory or not common.tiny()):
        document = {
            "format": common.FORMAT,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": ["python -m bench", *argv],
            "tiny": common.tiny(),
            "environment": common.environment(load_before),
            "runs": runs,
            "benches": common.RESULTS,
        }
        path = common.write_results(document, Path(directory) if directory else common.RESULTS_DIR)
        print(f"results: {path}")
    return 0 if all(r["ok"] for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
