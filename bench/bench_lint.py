"""`dbtool lint` side by side with squawk (PyPI squawk-cli, one Rust binary), on two corpora:

  - this project's own schema files (sql/<module>/*.sql): ours must report 0 findings in its default
    group; squawk's default rules report hundreds there, nearly all noise (every CREATE INDEX on a
    table the same migration creates, every varchar, a missing `SET lock_timeout` in every file
    although dbtool sets it around each file);
  - the unsafe migrations of tests/lint_corpus/ (one file per rule at least): how many each tool flags;
    and their safe variants (tests/lint_corpus/safe/): how many each flags anyway.

Counts, then timings: the best wall time of whole processes (BENCH_LINT_REPEAT, default 7), both
without a database (squawk never has one; ours reads the committed snapshot, and judges volatility and
casts conservatively). A last column counts ours again with a database (a migrated scratch database of
the bench server, as tests/test_lint_corpus.py prepares it): pg_proc and pg_cast then clear the safe
variants. squawk comes from the bench extra of requirements.lock (.venv/bin/squawk); when it is
missing, only ours runs, and it says so. Nothing in the test suite asserts a timing.
Goals (issue 14): 0 findings of ours on sql/ in the default group; every unsafe corpus file flagged by ours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from bench.common import goal, report, scratch, size, tiny
from dbtool import migrate as migrate_lib
from dbtool import paths

REPEAT = 1 if tiny() else int(os.environ.get("BENCH_LINT_REPEAT", "7"))
BIN = Path(sys.executable).parent
CORPUS = paths.root() / "tests" / "lint_corpus"


def corpora() -> dict[str, list[Path]]:
    schema = [f for m in paths.modules() for f in sorted((paths.sql_dir() / m).glob("*.sql"))]
    return {"sql/ (our schema files)": schema, "lint_corpus (unsafe)": sorted(CORPUS.glob("*.sql")),
            "lint_corpus/safe": sorted((CORPUS / "safe").glob("*.sql"))}


def env() -> dict[str, str]:
    """No database for either tool: ours must not read one squawk cannot."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTOOL_")) and k != "DATABASE_URL"}


def squawk_binary() -> str | None:
    local = BIN / "squawk"
    return str(local) if local.exists() else shutil.which("squawk")


def ours(files: list[Path], url: str | None = None) -> dict:
    db = ["--database-url", url] if url else []
    out = subprocess.run([str(BIN / "dbtool"), "lint", "--format", "json", *db, *map(str, files)],
                         capture_output=True, text=True, env=env(), cwd=paths.root())
    if out.returncode not in (0, 1):
        raise SystemExit(f"bench_lint: dbtool lint failed: {out.stderr[-400:]}")
    return json.loads(out.stdout)


def squawk(binary: str, files: list[Path]) -> list[dict]:
    out = subprocess.run([binary, "--reporter", "json", "--pg-version", "15", *map(str, files)], capture_output=True,
                         text=True, cwd=paths.root())
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise SystemExit(f"bench_lint: squawk failed ({out.returncode}): {out.stderr[-400:]}")
    return json.loads(out.stdout)


def best(fn, *args) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(paths.root()))
    except ValueError:
        return path


def prepare(url: str) -> None:
    """What the corpus expects of its database besides sql/ (as tests/test_lint_corpus.py)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE crm.customer ADD CONSTRAINT customer_email_not_null CHECK (email IS NOT NULL) "
                     "NOT VALID")
        conn.execute("CREATE SCHEMA metrics; CREATE TABLE metrics.readings (at date NOT NULL, value float8) "
                     "PARTITION BY RANGE (at); CREATE TABLE metrics.readings_2024 PARTITION OF metrics.readings "
                     "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")


def run() -> None:
    binary = squawk_binary()
    if binary is None:
        print("\nlint: squawk is not installed (squawk-cli, in the bench extra of requirements.lock): only dbtool "
              "lint runs")
    else:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"\nlint: dbtool lint vs {version} (--pg-version 15), both without a database")
    with scratch("lint") as target:
        migrate_lib.migrate(target, paths.modules(), say=lambda _m: None)
        prepare(target.conninfo)
        print(f"  {'corpus':26} {'files':>5} {'ours: findings':>15} {'in files':>8} "
              f"{'squawk: warnings':>17} {'in files':>8} {'ours with a database':>21}")
        timings: list[tuple[str, list[tuple[str, float]]]] = []
        counts: dict[str, tuple[int, int, int]] = {}  # corpus -> (files, our findings, files we flagged)
        for name, files in corpora().items():
            doc = ours(files)
            flagged = len({f["file"] for f in doc["findings"]})
            counts[name] = (len(files), len(doc["findings"]), flagged)
            size("lint", f"files: {name}", len(files))
            row = f"  {name:26} {len(files):>5} {len(doc['findings']):>15} {flagged:>8}"
            theirs: list[dict] = []
            if binary:
                theirs = squawk(binary, files)
                row += f" {len(theirs):>17} {len({_rel(w['file']) for w in theirs}):>8}"
            else:
                row += f" {'-':>17} {'-':>8}"
            with_db = ours(files, target.conninfo)
            print(row + f" {len(with_db['findings']):>21}")
            print(f"      ours:   {dict(Counter(f['rule'] for f in doc['findings']).most_common()) or 'none'}")
            if binary:
                print(f"      squawk: {dict(Counter(w['rule_name'] for w in theirs).most_common()) or 'none'}")
            rows = [("dbtool lint (a process)", best(ours, files))]
            if binary:
                rows.append(("squawk (a process)", best(squawk, binary, files)))
            timings.append((name, rows))
    for name, rows in timings:
        report(f"lint timings: {name}, best of {REPEAT}", rows, baseline=rows[-1][0])
    _, findings, _ = counts["sql/ (our schema files)"]
    goal("lint", "dbtool lint findings on sql/ (default group)", findings, "<=", 0)
    files, _, flagged = counts["lint_corpus (unsafe)"]
    goal("lint", "unsafe lint_corpus files flagged by dbtool lint (share)", flagged / files if files else 0.0,
         ">=", 1.0)
