"""validate across many databases: one `dbtool validate --targets` run vs a shell loop of `dbtool validate`.

Builds one migrated database, copies it N times (CREATE DATABASE ... TEMPLATE; N = 50, BENCH_FLEET_N, 3 with
BENCH_TINY=1), then times, as whole processes:
  - a shell loop running `dbtool validate --database-url URL` once per database (what a DBA scripts today: each
    run pays interpreter start-up, imports, the snapshot load, the file checksums and a connection);
  - `dbtool validate --targets FILE` (one process; targets in a pool of worker threads, checksums once);
  - the same with --parallel 1 (what the pool adds over doing them one after another in one process).
Every database must validate clean in every run. Goal: the fleet run at least 10x faster than the loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from psycopg import sql

from bench.common import figure, goal, report, scratch, tiny
from dbtool import migrate as migrate_lib
from dbtool import paths

BIN = Path(sys.executable).parent


def count() -> int:
    return 3 if tiny() else int(os.environ.get("BENCH_FLEET_N", "50"))


def timed_process(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_fleet: {' '.join(cmd[:4])} exited {proc.returncode}: {proc.stderr[-500:]}"
                         f"{proc.stdout[-500:]}")
    return seconds


def run() -> None:
    n = count()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBTOOL_")}
    env.pop("DATABASE_URL", None)
    with scratch("fleet") as template, tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        migrate_lib.migrate(template, paths.modules(), say=lambda _m: None)
        base = template.params["dbname"]
        copies = [f"{base}_c{i}" for i in range(n)]
        with template.connect(autocommit=True, dbname="postgres") as admin:
            try:
                for name in copies:
                    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                                 sql.Identifier(base)))
                urls = [template.with_params(dbname=name).conninfo for name in copies]
                targets = Path(tmp) / "targets.txt"
                targets.write_text("".join(f"db{i} {url}\n" for i, url in enumerate(urls)))
                targets.chmod(0o600)
                listed = Path(tmp) / "urls.txt"
                listed.write_text("".join(f"{url}\n" for url in urls))
                dbtool = str(BIN / "dbtool")
                loop = ('fails=0; while IFS= read -r url; do "$DBTOOL" validate --database-url "$url" >/dev/null '
                        '2>&1 || fails=$((fails+1)); done < "$URLS"; exit $fails')
                t_loop = timed_process(["bash", "-c", loop], {**env, "DBTOOL": dbtool, "URLS": str(listed)})
                t_fleet = timed_process([dbtool, "validate", "--targets", str(targets)], env)
                t_one = timed_process([dbtool, "validate", "--targets", str(targets), "--parallel", "1"], env)
            finally:
                for name in copies:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    parallel = min(n, int(os.environ.get("DBTOOL_PARALLEL") or 0) or _default_parallel())
    report(f"validate {n} databases (whole processes)", [
        (f"shell loop: dbtool validate x {n}", t_loop),
        (f"dbtool validate --targets ({parallel} at a time)", t_fleet),
        ("dbtool validate --targets --parallel 1", t_one),
    ], baseline=f"shell loop: dbtool validate x {n}")
    ratio = t_loop / t_fleet
    print(f"  --targets is {ratio:.1f}x faster than the loop ({t_loop / n:.3f}s vs {t_fleet / n:.3f}s per database)")
    figure("fleet", "databases", n)
    figure("fleet", "shell_loop_seconds", round(t_loop, 3))
    figure("fleet", "targets_seconds", round(t_fleet, 3))
    figure("fleet", "targets_parallel_1_seconds", round(t_one, 3))
    figure("fleet", "parallel", parallel)
    goal("fleet", "validate 50 targets vs shell loop", ratio, ">=", 10)  # the name stays: BENCH_TINY runs 3


def _default_parallel() -> int:
    from dbtool.settings import DEFAULT_PARALLEL

    return DEFAULT_PARALLEL
