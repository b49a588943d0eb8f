"""Start-up of the CLI, side by side with what it is built on.

Each row is the best wall time of whole processes (BENCH_STARTUP_REPEAT, default 15):
  - `dbtool --help` against the bare interpreter importing click (goal: at most 2x);
  - `dbtool status` and `dbtool migrate` with nothing to do, on a migrated scratch database,
    against yoyo's own `yoyo list` of the same migrations, and against the floor every one of
    them pays: an interpreter that imports psycopg, connects and runs one query.
Goals: `dbtool --help` at most 2x `python -c 'import click'`; `dbtool status` at most 0.5x `yoyo list`
(the floor, python + psycopg + connect + SELECT 1, is printed beside it: no status can go below it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import goal, report, scratch, size, tiny
from dbtool import migrate as migrate_lib
from dbtool import paths

REPEAT = 1 if tiny() else int(os.environ.get("BENCH_STARTUP_REPEAT", "15"))
BIN = Path(sys.executable).parent


def best(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Best wall time of REPEAT runs of a whole process; a failing run stops the bench."""
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"bench_startup: {' '.join(cmd[:3])} failed: {proc.stderr.decode()[-300:]}")
    return min(times)


def run() -> None:
    py = sys.executable
    dbtool = [str(BIN / "dbtool")]
    size("startup", "repeat", REPEAT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTOOL_")) and k != "DATABASE_URL"}
    t_click = best([py, "-c", "import click"])
    t_help = best([*dbtool, "--help"], env)
    report("start-up: dbtool --help", [
        ("python -c pass", best([py, "-c", "pass"])),
        ("python -c 'import click'", t_click),
        ("dbtool --help", t_help),
    ], baseline="python -c 'import click'")

    with scratch("startup") as target:
        migrate_lib.migrate(target, paths.modules(), say=lambda _m: None)
        url = target.conninfo
        # yoyo wants a URI: the printable one (no password; libpq takes it from PGPASSWORD).
        yoyo_url = target.display().replace("postgresql://", "postgresql+psycopg://", 1)
        yoyo_env = {**env, **({"PGPASSWORD": target.password} if target.password else {})}
        dirs = [str(paths.migrations_dir() / m) for m in paths.modules()]
        floor = f"import psycopg\nwith psycopg.connect({url!r}) as c: c.execute('SELECT 1').fetchall()"
        t = {
            "floor": best([py, "-c", floor]),
            "yoyo": best([str(BIN / "yoyo"), "list", "--database", yoyo_url, *dirs], yoyo_env),
            "status": best([*dbtool, "status", "--database-url", url], env),
            "migrate": best([*dbtool, "migrate", "--database-url", url], env),
        }
        report("start-up: status / migrate with nothing to do (4 modules)", [
            ("python: import psycopg, connect, SELECT 1", t["floor"]),
            ("yoyo list", t["yoyo"]),
            ("dbtool status", t["status"]),
            ("dbtool migrate (nothing to do)", t["migrate"]),
        ], baseline="yoyo list")
    goal("startup", "dbtool --help vs python -c 'import click'", t_help / t_click, "<=", 2.0)
    goal("startup", "dbtool status vs yoyo list", t["status"] / t["yoyo"], "<=", 0.5,
         note=f"floor: python + import psycopg + connect + SELECT 1 is {t['floor'] / t['yoyo']:.2f}x yoyo list")
