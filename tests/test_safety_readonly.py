"""Issue 12 (items 16, 17, 20, 21, 24): read-only commands never wait without end, the pool survives a
restart, odd input is one line with the documented exit code, smoke handles every valid table, and a
killed `validate --from-sql` leaves nothing behind for good."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from dbtool import pool, settings, smoke
from dbtool import stats as stats_lib
from dbtool.catalog import expected
from dbtool.config import Target
from dbtool.devdb import FAST_SETTINGS, Cluster
from dbtool.errors import EXIT_CONNECT, EXIT_FINDINGS, EXIT_USAGE
from dbtool.lock_wait import TableLockTimeout
from dbtool.paths import ROOT, modules
from helpers import add_migration, copy_project, dbtool_env, finish_dbtool, run_dbtool, start_dbtool


def one_line_error(out) -> str:
    """The last stderr line, asserting there is no traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


def wait_for(what, timeout: float = 60, every: float = 0.02):
    """what() until it is truthy (returned), or fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < end, f"gave up waiting for {what.__doc__ or what}"
        time.sleep(every)
    return found


# -- item 16: read-only commands and table locks ----------------------------------------------------------

@pytest.mark.parametrize("command", ["validate", "stats", "smoke"])
def test_read_only_command_behind_an_access_exclusive_lock_names_the_holder(db_url, command):
    with psycopg.connect(db_url, application_name="ddl-job") as blocker:
        blocker.execute("LOCK TABLE crm.product IN ACCESS EXCLUSIVE MODE")  # held until the transaction ends
        started = time.monotonic()
        out = run_dbtool(command, "--lock-timeout", "1", "--database-url", db_url, timeout=60)
        took = time.monotonic() - started
        pid = blocker.info.backend_pid
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS, out.stderr
    assert line.startswith(f"dbtool: {command} gave up after 1s waiting for a table lock"), line
    assert f"pid {pid} (ddl-job, idle in transaction) holds AccessExclusiveLock on crm.product" in line, line
    assert "LOCK TABLE crm.product IN ACCESS EXCLUSIVE MODE" in line
    assert took < 30


def test_status_behind_a_lock_on_yoyos_table_names_the_holder(db_url):
    with psycopg.connect(db_url, application_name="yoyo-cli") as blocker:
        blocker.execute("LOCK TABLE _yoyo_migration IN ACCESS EXCLUSIVE MODE")
        out = run_dbtool("status", "--lock-timeout", "1", "--database-url", db_url, timeout=60)
        pid = blocker.info.backend_pid
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS and line.startswith("dbtool: status gave up after 1s"), out.stderr
    assert f"pid {pid} (yoyo-cli, idle in transaction) holds AccessExclusiveLock on public._yoyo_migration" in line


def test_the_default_wait_is_10s_and_the_variable_sets_it(db_url, monkeypatch):
    monkeypatch.delenv("DBTOOL_READ_LOCK_TIMEOUT", raising=False)
    assert settings.get("DBTOOL_READ_LOCK_TIMEOUT") == 10.0
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE planning.stores IN ACCESS EXCLUSIVE MODE")
        out = run_dbtool("validate", "--module", "planning", "--database-url", db_url,
                         env={"DBTOOL_READ_LOCK_TIMEOUT": "0.5"}, timeout=60)
    assert out.returncode == EXIT_FINDINGS and "gave up after 0.5s" in one_line_error(out)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_bad_lock_wait_is_a_usage_error(value):
    out = run_dbtool("stats", "--lock-timeout", value, "--database-url", "postgresql://u@127.0.0.1:1/x")
    assert out.returncode == EXIT_USAGE and "Traceback" not in out.stderr, out.stderr
    out = run_dbtool("smoke", env={"DBTOOL_READ_LOCK_TIMEOUT": value, "DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert out.returncode == EXIT_USAGE and "DBTOOL_READ_LOCK_TIMEOUT" in one_line_error(out)


def test_validate_behind_a_running_migration_names_it(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0099_slow", {"990_slow.sql": (
        "ALTER TABLE crm.product ADD COLUMN IF NOT EXISTS slow_col int;\nSELECT pg_sleep(8);\n")},
        rollback="ALTER TABLE crm.product DROP COLUMN slow_col")
    migrating = start_dbtool("migrate", "--module", "crm", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    try:
        with psycopg.connect(db_url, autocommit=True) as watch:
            def altering():
                """the migration holding ACCESS EXCLUSIVE on crm.product"""
                return watch.execute(
                    "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.granted"
                    " AND l.relation = 'crm.product'::regclass AND l.mode = 'AccessExclusiveLock'"
                    " AND a.application_name LIKE 'dbtool migrate %'").fetchone()
            (pid,) = wait_for(altering)
        out = run_dbtool("validate", "--lock-timeout", "1", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    finally:
        done = finish_dbtool(migrating)
    assert done.returncode == 0, done.stderr
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS
    assert f"pid {pid} (dbtool migrate host=" in line and "holds AccessExclusiveLock on crm.product" in line, line


def test_library_stats_keeps_the_callers_lock_timeout_and_raises_in_one_line(postgresql, db_url):
    postgresql.execute("SET lock_timeout = '3s'")
    stats_lib.table_stats(postgresql, ["planning"])
    assert postgresql.execute("SELECT current_setting('lock_timeout')").fetchone() == ("3s",)
    postgresql.rollback()
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE planning.stores IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TableLockTimeout, match=r"^stats gave up after 0\.2s .*planning\.stores"):
            stats_lib.table_stats(postgresql, ["planning"], lock_timeout=0.2)


# -- item 17: the pool after a restart ---------------------------------------------------------------------

def _first_request(p, timeout: float | None = None) -> float:
    started = time.monotonic()
    with p.connection(timeout=timeout) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    return time.monotonic() - started


def test_pool_serves_the_first_request_after_every_backend_was_terminated(db_url):
    with pool.make_pool(Target(db_url, "test"), min_size=8, max_size=10, timeout=5,
                        application_name="pool-under-test") as p:
        p.wait()
        with psycopg.connect(db_url, autocommit=True) as admin:
            ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE application_name = 'pool-under-test'").fetchone()[0]
        assert ended == 8
        assert _first_request(p) < 3  # psycopg_pool's own check loop: 1+2+4 s on three dead ones, then a timeout


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own, to stop and start (the suite's server is shared)."""
    base = Path(tempfile.mkdtemp(prefix="dbtool-restart-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK)
                                 else None))
    cluster = Cluster(base, port=25436, dbname="restart", settings=FAST_SETTINGS)
    try:
        yield cluster.ensure_running(say=lambda _m: None)
    finally:
        cluster.destroy()  # stops it and removes base


def test_pool_serves_the_first_request_after_a_server_restart(own_server):
    with pool.make_pool(Target(own_server.conninfo(), "test"), min_size=8, max_size=10, timeout=5) as p:
        p.wait()
        own_server.stop()
        own_server.ensure_running(say=lambda _m: None)
        assert _first_request(p) < 3
        own_server.stop()  # a request waiting through an outage is served as soon as the server is back
        with ThreadPoolExecutor(1) as thread:
            waiting = thread.submit(_first_request, p, 30)
            time.sleep(10)  # reconnect attempts back off 1, 2, 4, 8 s: unbounded, the next one is due at ~15 s
            own_server.ensure_running(say=lambda _m: None)
            back = time.monotonic()
            waiting.result(timeout=30)
            assert time.monotonic() - back < 3


# -- item 20: one line, the documented exit code ----------------------------------------------------------

def test_snapshot_with_dbtool_root_elsewhere_writes_nothing_and_says_so(db_url, tmp_path):
    # Run a copy of dbtool (python -m dbtool from its folder), so a regression writes into the copy only.
    runner = tmp_path / "installed"
    shutil.copytree(ROOT / "dbtool", runner / "dbtool", ignore=shutil.ignore_patterns("__pycache__"))
    copy_project(runner)
    other = copy_project(tmp_path / "other")
    derived = [*sorted((runner / "dbtool" / "catalog" / "snapshots").glob("*.json")),
               runner / "dbtool" / "repo" / "rows_generated.py", *sorted((other / "sql").glob("*.psql"))]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in derived]
    out = subprocess.run([sys.executable, "-m", "dbtool", "snapshot", "--database-url", db_url], cwd=runner,
                         env=dbtool_env({"DBTOOL_ROOT": str(other)}), capture_output=True, text=True, timeout=120)
    line = one_line_error(out)
    assert out.returncode == EXIT_USAGE, out.stderr
    assert line.startswith("dbtool: snapshot writes ") and "nothing written" in line
    assert str(runner / "dbtool" / "catalog" / "snapshots") in line  # the copy's own package: it ran the copy
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in derived] == before


@pytest.fixture
def duck_file(tmp_path) -> Path:
    path = tmp_path / "a.duckdb"
    assert run_dbtool("analytics", "init", "--path", str(path)).returncode == 0
    return path


@pytest.mark.parametrize("content,why", [
    (bytes(range(256)) * 4, "not UTF-8 text"),
    (b"\x00" * 10, "is not JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b"[1e39, 0]", "beyond a 32-bit float"),
    (b"[NaN, 1]", "not finite"),
    (b"[Infinity]", "not finite"),
    (b"[1" + b"0" * 400 + b"]", "beyond a 32-bit float"),
    (b"[true, false]", "list of numbers"),
    (b'{"a": 1}', "list of numbers"),
])
def test_search_vector_file_that_is_not_a_vector_is_one_line(duck_file, tmp_path, content, why):
    bad = tmp_path / "vector.bin"
    bad.write_bytes(content)
    out = run_dbtool("analytics", "search", "--path", str(duck_file), "--vector", f"@{bad}")
    assert out.returncode == EXIT_USAGE and why in one_line_error(out), out.stderr


def test_search_vector_file_that_cannot_be_read_as_a_vector_is_one_line(duck_file, tmp_path):
    out = run_dbtool("analytics", "search", "--path", str(duck_file), "--vector", f"@{tmp_path}")
    assert out.returncode == EXIT_USAGE and "Is a directory" in one_line_error(out)
    out = run_dbtool("analytics", "search", "--path", str(duck_file), "--vector", "@/dev/zero")
    assert out.returncode == EXIT_USAGE and "larger than 16 MiB" in one_line_error(out)


def test_search_vector_file_with_a_bom_is_read(duck_file, tmp_path):
    import duckdb

    from dbtool.analytics.embeddings import embedding_dim

    with duckdb.connect(str(duck_file), read_only=True) as duck:
        dim = embedding_dim(duck)
    good = tmp_path / "vector.json"
    good.write_bytes("\ufeff".encode() + json.dumps([0.5] * dim).encode())
    out = run_dbtool("analytics", "search", "--path", str(duck_file), "--vector", f"@{good}", "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stderr


def test_library_search_refuses_a_vector_beyond_float32_in_one_line(duck_file):
    import duckdb

    from dbtool.analytics.db import AnalyticsError
    from dbtool.analytics.embeddings import embedding_dim, search_similar

    with duckdb.connect(str(duck_file), read_only=True) as duck:
        dim = embedding_dim(duck)
        with pytest.raises(AnalyticsError, match="beyond a 32-bit float"):
            search_similar(duck, [1e39] * dim)
        with pytest.raises(AnalyticsError, match="flat list of numbers"):
            search_similar(duck, ["x"] * dim)


@pytest.mark.parametrize("host", ["db..example.com", "a" * 64 + ".example.com", ".example.com"])
@pytest.mark.parametrize("via", ["--database-url", "PGHOST"])
def test_a_host_name_typo_is_one_line_exit_3(host, via):
    if via == "PGHOST":
        out = run_dbtool("status", env={"PGHOST": host, "PGUSER": "u", "PGPASSWORD": "Sekr1t-pw"})
    else:
        out = run_dbtool("status", "--database-url", f"postgresql://u:Sekr1t-pw@{host}/x")
    line = one_line_error(out)
    assert out.returncode == EXIT_CONNECT, out.stderr
    assert "unknown host: not a valid host name" in line and host in line, line
    assert "Sekr1t" not in out.stdout + out.stderr


def test_smoke_covers_a_table_without_a_repository_module(postgresql, monkeypatch):
    monkeypatch.setitem(sys.modules, "dbtool.repo.planning.workflows", None)  # as if the file were not written yet
    lines: list[str] = []
    results = smoke.run(postgresql, ["planning"], say=lines.append)
    assert all(r.ok for r in results), lines
    line = next(ln for ln in lines if "planning.workflows" in ln)
    assert line.startswith("ok") and "no repository module dbtool/repo/planning/workflows.py" in line


# -- item 21: smoke refused is exit 3 ------------------------------------------------------------------------

def test_smoke_without_privileges_is_a_refusal(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS smoke_nobody")
        conn.execute("CREATE ROLE smoke_nobody LOGIN")
    try:
        url = db_url.replace("postgresql://postgres@", "postgresql://smoke_nobody@")
        out = run_dbtool("smoke", "--module", "planning", "--database-url", url)
        line = one_line_error(out)
        assert out.returncode == EXIT_CONNECT, out.stderr
        assert line.startswith("dbtool: the server refused this role: permission denied for schema planning")
        assert out.stdout.count("FAIL") == len([ln for ln in out.stdout.splitlines() if ln.strip()])
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY smoke_nobody")
            conn.execute("DROP ROLE smoke_nobody")


# -- item 24: smoke on GENERATED ALWAYS, scratch databases after kill -9 ---------------------------------------

def test_smoke_passes_on_generated_always_identity_and_leaves_sequences_alone(db_url):
    seqs = "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = ANY(%s) ORDER BY 1"
    with psycopg.connect(db_url, autocommit=True) as conn:
        always = conn.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns"
                              " WHERE is_identity = 'YES' AND table_schema = ANY(%s)", (modules(),)).fetchall()
        assert always
        for schema, table, column in always:
            conn.execute(f'ALTER TABLE "{schema}"."{table}" ALTER COLUMN "{column}" SET GENERATED ALWAYS')
        before = conn.execute(seqs, (modules(),)).fetchall()
    out = run_dbtool("smoke", "--database-url", db_url)
    assert out.returncode == 0, out.stdout + out.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute(seqs, (modules(),)).fetchall() == before


SCRATCH = "SELECT datname FROM pg_database WHERE left(datname, 15) = 'dbtool_scratch_' ORDER BY 1"


def test_a_killed_validate_from_sql_leaves_no_scratch_database_for_long(db_url, pg_cluster):
    admin_url = pg_cluster.conninfo("postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        left_before = {r[0] for r in admin.execute(SCRATCH).fetchall()}
        run = start_dbtool("validate", "--from-sql", "--database-url", db_url)
        try:
            def scratch():
                """validate --from-sql to create its scratch database"""
                return {r[0] for r in admin.execute(SCRATCH).fetchall()} - left_before
            (name,) = wait_for(scratch, every=0.005)
            run.send_signal(signal.SIGKILL)
        finally:
            finish_dbtool(run)
        keeper = int(name.split("_")[2])

        def keeper_gone():
            """the killed run's server session to end"""
            return not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (keeper,)).fetchone()
        wait_for(keeper_gone)
        assert name in {r[0] for r in admin.execute(SCRATCH).fetchall()}  # left behind by kill -9 ...
        out = run_dbtool("validate", "--from-sql", "--module", "infra", "--database-url", db_url)
        assert out.returncode == 0, out.stderr
        assert f"dropped the scratch database {name}, left by a run that is gone (host=" in out.stderr
        assert {r[0] for r in admin.execute(SCRATCH).fetchall()} <= left_before  # ... and gone with the next run


def test_a_scratch_database_of_a_live_run_is_kept(pg_cluster):
    server = Target(pg_cluster.conninfo("postgres"), "test")
    said: list[str] = []
    with expected.scratch_database(server) as first:
        with expected.scratch_database(server, say=said.append) as second:
            assert first.params["dbname"] != second.params["dbname"]
        with psycopg.connect(first.conninfo) as conn:  # still there: its maker is alive
            assert conn.execute("SELECT current_database()").fetchone() == (first.params["dbname"],)
    assert said == []
