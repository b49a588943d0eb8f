"""Issue 12, items 12, 13, 15, 20-23: migrate against other tools, killed runs, INVALID indexes,
and files it must refuse (each in one line, before the lock where it can)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest

from dbtool.lock import LOCK_CLASS, LOCK_OBJ, this_host
from dbtool.migration_steps import index_target, split
from helpers import add_migration, copy_project, finish_dbtool, run_dbtool, start_dbtool


def one_line_error(out, code: int = 1) -> str:
    """The last stderr line of a run that exited `code`, asserting there is no traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == code, out.stderr
    return out.stderr.strip().splitlines()[-1]


def one(url: str, query: str, params=None):
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def applies_of(url: str, mid: str) -> int:
    return one(url, "SELECT count(*) FROM _yoyo_log WHERE operation = 'apply' AND migration_id = %s", (mid,))


def migrate(url: str, root, *args: str, timeout: float = 120):
    return run_dbtool("migrate", "--database-url", url, *args, env={"DBTOOL_ROOT": str(root)}, timeout=timeout)


def _reaped_pid() -> int:
    """The pid of a process that has just exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def wait_for_query(url: str, pattern: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                               (pattern,)).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    raise AssertionError(f"no session ran {pattern!r}")


def backend_alive(url: str, pid: int) -> bool:
    return bool(one(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)))


ALTER = "ALTER TABLE crm.product ADD COLUMN IF NOT EXISTS vintage integer;\n"


# -- 12: yoyo's lock row is cleared only when its holder is provably gone ------------------------

def test_a_yoyo_lock_row_whose_holder_may_be_alive_is_waited_for_never_cleared(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {"140_alter.sql": ALTER})
    with psycopg.connect(db_url, autocommit=True, application_name="yoyo") as holder:  # a yoyo run, alive
        holder.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), %s)", (os.getpid(),))
        out = migrate(db_url, root, "--lock-timeout", "2")
        line = one_line_error(out)
        assert line.startswith("dbtool: gave up after 2s waiting for yoyo's lock, taken at ")
        assert f"by pid {os.getpid()}" in line and f"pid {holder.info.backend_pid} (yoyo" in line
        assert "cleared" not in out.stderr
        assert one(db_url, "SELECT count(*) FROM yoyo_lock") == 1  # still the holder's
    assert applies_of(db_url, "crm_0002_alter") == 0


def test_a_yoyo_lock_row_is_taken_over_once_its_holder_releases_it(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {"140_alter.sql": ALTER})
    with psycopg.connect(db_url, autocommit=True, application_name="other-tool") as holder:
        holder.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 424242)")
        proc = start_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
        try:
            time.sleep(2)
            assert proc.poll() is None  # waiting, not applying
            assert applies_of(db_url, "crm_0002_alter") == 0
            holder.execute("DELETE FROM yoyo_lock")
        finally:
            out = finish_dbtool(proc)
    assert out.returncode == 0, out.stderr
    assert "waiting up to 60s for yoyo's lock" in out.stderr and "by pid 424242" in out.stderr
    assert applies_of(db_url, "crm_0002_alter") == 1


def test_a_dbtool_lock_row_whose_run_still_has_a_session_is_waited_for(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {"140_alter.sql": ALTER})
    # A run elsewhere that lost its advisory lock's connection but still runs a migration.
    with psycopg.connect(db_url, autocommit=True, application_name="dbtool migrate host=elsewhere pid=4242") as run:
        run.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), -4242)")
        out = migrate(db_url, root, "--lock-timeout", "1")
        assert "by dbtool pid 4242" in one_line_error(out)
    assert applies_of(db_url, "crm_0002_alter") == 0
    out = migrate(db_url, root)  # its session gone: the row is provably stale
    assert out.returncode == 0, out.stderr
    assert "cleared a stale yoyo lock left by dbtool pid 4242" in out.stderr


SLOW_STEP = """from yoyo import step
from dbtool.migration_steps import apply_files, rollback_sql
__depends__ = {'crm_0001_initial'}
step(apply_files(__file__, '140_slow.sql'), rollback_sql(__file__, 'DROP TABLE crm.slow_once'))
"""


def test_a_yoyo_run_in_progress_is_waited_for_and_its_migration_applied_once(db_url, tmp_path):
    root = copy_project(tmp_path)
    (root / "sql" / "crm" / "140_slow.sql").write_text(
        "CREATE TABLE crm.slow_once (id int);\nSELECT pg_sleep(3);\n")  # not idempotent: twice fails
    latest = max(p.stem for p in (root / "migrations" / "crm").glob("crm_0*.py"))
    (root / "migrations" / "crm" / "crm_0009_slow.py").write_text(SLOW_STEP.replace("crm_0001_initial", latest))
    with psycopg.connect(db_url) as conn:
        info = conn.info
        yoyo_url = f"postgresql+psycopg://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"
    env = {**os.environ, "DBTOOL_ROOT": str(root)}
    env = {k: v for k, v in env.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    yoyo = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "yoyo"), "apply", "--batch",
                             "--no-config-file", "--database", yoyo_url, str(root / "migrations" / "crm")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for_query(db_url, "SELECT pg_sleep(3)%")
        out = migrate(db_url, root)
    finally:
        yoyo_out = finish_dbtool(yoyo)
    assert yoyo_out.returncode == 0, yoyo_out.stderr
    assert out.returncode == 0, out.stderr
    assert "waiting up to 60s for yoyo's lock" in out.stderr and "cleared" not in out.stderr
    assert applies_of(db_url, "crm_0009_slow") == 1


# -- 13: an INVALID index is found in the catalog, whatever its quoting --------------------------

QUOTED_CIC = ('-- transactional: false\n'
              'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Store Cluster Name"\n'
              '    ON "planning"."store_clusters" (cluster_name);\n')


def index_state(url: str, name: str):
    return one(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))


def test_a_quoted_invalid_unique_index_is_rebuilt_and_then_enforced(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0009_name", {"900_name_idx.sql": QUOTED_CIC}, transactional=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'd'), ('b', 'd')")
    line = one_line_error(migrate(db_url, root))
    assert "could not create unique index" in line
    assert index_state(db_url, 'planning."Store Cluster Name"') is False
    assert 'it left an INVALID index planning."Store Cluster Name", which the next run drops and builds again' in line
    assert "nothing was applied" not in line

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM planning.store_clusters WHERE cluster_id = 'b'")
    out = migrate(db_url, root)
    assert out.returncode == 0, out.stderr
    assert 'dropped the INVALID index planning."Store Cluster Name"' in out.stderr
    assert index_state(db_url, 'planning."Store Cluster Name"') is True
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('c', 'd')")
    assert run_dbtool("validate", "--database-url", db_url, "--module", "planning",
                      env={"DBTOOL_ROOT": str(root)}).stdout.count("INVALID") == 0


def _leave_invalid(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'd'), ('b', 'd')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(statement)
        conn.execute("DELETE FROM planning.store_clusters WHERE cluster_id = 'b'")


def test_an_invalid_index_under_a_transactional_create_index_if_not_exists_is_rebuilt(db_url, tmp_path):
    root = copy_project(tmp_path)
    _leave_invalid(db_url, 'CREATE UNIQUE INDEX CONCURRENTLY "Name Idx" ON planning.store_clusters (cluster_name)')
    add_migration(root, "planning", "planning_0009_name", {"900_name_idx.sql": (
        'SET search_path = planning;\n'
        'CREATE UNIQUE INDEX IF NOT EXISTS "Name Idx" ON store_clusters (cluster_name);\n'
        'RESET search_path;\n')})
    out = migrate(db_url, root)
    assert out.returncode == 0, out.stderr
    assert index_state(db_url, 'planning."Name Idx"') is True


def test_a_name_held_by_another_object_fails_the_migration(db_url, tmp_path):
    root = copy_project(tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX held_idx ON planning.stores (store_id)")
    add_migration(root, "planning", "planning_0009_name", {"900_name_idx.sql": (
        "CREATE INDEX IF NOT EXISTS held_idx ON planning.store_clusters (cluster_name);\n")})
    line = one_line_error(migrate(db_url, root))
    assert line == ("dbtool: sql/planning/900_name_idx.sql:1: planning.held_idx is an index of another table than "
                    "planning.store_clusters (IF NOT EXISTS kept what already held the name) "
                    "(migration planning_0009_name; nothing was applied)")
    assert applies_of(db_url, "planning_0009_name") == 0


def test_a_failed_repair_fails_the_migration(db_url, tmp_path):
    root = copy_project(tmp_path)
    _leave_invalid(db_url, 'CREATE UNIQUE INDEX CONCURRENTLY "Name Idx" ON planning.store_clusters (cluster_name)')
    add_migration(root, "planning", "planning_0009_name", {"900_name_idx.sql": (
        "-- transactional: false\n-- lock_timeout: 300ms\n"
        'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Name Idx" ON planning.store_clusters (cluster_name);\n')},
        transactional=False)
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE planning.store_clusters IN SHARE UPDATE EXCLUSIVE MODE")
        line = one_line_error(migrate(db_url, root))
    assert line.startswith('dbtool: sql/planning/900_name_idx.sql:3: cannot drop the INVALID index '
                           'planning."Name Idx" (left by an earlier failed build) to build it again: '
                           "canceling statement due to lock timeout")
    assert applies_of(db_url, "planning_0009_name") == 0
    assert index_state(db_url, 'planning."Name Idx"') is False


def test_index_target_reads_names_as_postgres_does():
    assert index_target('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "A b" ON "s"."T" (x)') == \
        type(index_target("CREATE INDEX i ON t (x)"))('"A b"', '"s"."T"', True)
    assert index_target("create index /* c */ i -- c\n on s.t (x)").table == "s.t"
    assert index_target("CREATE INDEX CONCURRENTLY ON t (x)") is None  # no name: PostgreSQL picks one
    assert index_target("CREATE INDEX i ON ONLY p (x)") is None  # INVALID by design until attached
    assert index_target("CREATE TABLE i (x int)") is None


# -- 15: the sessions of a killed run --------------------------------------------------------------

def _stale_session(url: str, table: str) -> psycopg.Connection:
    """A session named like a dbtool run on this machine whose process is gone, holding a lock on `table`."""
    conn = psycopg.connect(url, autocommit=True,
                           application_name=f"dbtool migrate host={this_host()} pid={_reaped_pid()}")
    conn.pgconn.send_query(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)".encode())
    wait_for_query(url, "BEGIN; LOCK TABLE%")
    return conn


def test_a_killed_runs_session_is_terminated_and_named(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {"140_alter.sql": ALTER})
    stale = _stale_session(db_url, "crm.product")
    try:
        pid = one(db_url, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE%'")
        out = migrate(db_url, root, "--ddl-lock-timeout", "2s")
    finally:
        stale.close()
    assert out.returncode == 0, out.stderr
    assert f"terminated the stale session pid {pid} (dbtool migrate host={this_host()} pid=" in out.stderr
    assert "on this machine, is gone" in out.stderr
    assert applies_of(db_url, "crm_0002_alter") == 1


def test_no_terminate_stale_waits_for_the_session_and_names_it(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {"140_alter.sql": ALTER})
    stale = _stale_session(db_url, "crm.product")
    try:
        pid = one(db_url, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE%'")
        out = migrate(db_url, root, "--no-terminate-stale", "--lock-timeout", "1")
        assert backend_alive(db_url, pid)
    finally:
        stale.close()
    line = one_line_error(out)
    assert line.startswith("dbtool: gave up after 1s waiting for stale dbtool session(s) whose process is gone: "
                           f"pid {pid} (dbtool migrate host={this_host()} pid=")
    assert applies_of(db_url, "crm_0002_alter") == 0


SLEEP_60 = "CREATE TABLE IF NOT EXISTS crm.slow_test (id int);\nSELECT pg_sleep(60);\n"


def test_kill_9_during_a_long_statement_leaves_no_session_in_the_way(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_slow", {"140_slow.sql": SLEEP_60})
    proc = start_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    try:
        pid = wait_for_query(db_url, "SELECT pg_sleep(60)%")
    finally:
        proc.kill()
        finish_dbtool(proc)
    deadline = time.monotonic() + 15  # the server notices the client is gone (not after 60 s)
    while backend_alive(db_url, pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not backend_alive(db_url, pid)


def test_the_next_run_after_kill_9_applies_without_waiting_for_the_dead_statement(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_slow", {"140_slow.sql": SLEEP_60.replace("60", "30")})
    proc = start_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    try:
        wait_for_query(db_url, "SELECT pg_sleep(30)%")
    finally:
        proc.kill()
        finish_dbtool(proc)
    (root / "sql" / "crm" / "140_slow.sql").write_text("CREATE TABLE IF NOT EXISTS crm.slow_test (id int);\n")
    t0 = time.monotonic()
    out = migrate(db_url, root, "--ddl-lock-timeout", "2s")
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 20
    assert applies_of(db_url, "crm_0002_slow") == 1


# -- 21: a migration file cannot exit dbtool; reset's lock timeout names the blocker ---------------

@pytest.mark.parametrize("body, why", [
    ("raise SystemExit(0)\n", "it raised SystemExit(0)"),
    ("import sys\nsys.exit(0)\n", "it raised SystemExit(0)"),
    ("raise KeyboardInterrupt\n", "it raised KeyboardInterrupt"),
    ("raise ValueError('no way')\n", "ValueError: no way"),
])
def test_a_migration_file_that_exits_while_loading_is_a_failure(db_url, tmp_path, body, why):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_exit", {"140_a.sql": "CREATE TABLE crm.exit_test (id int);\n"})
    path = root / "migrations" / "crm" / "crm_0002_exit.py"
    path.write_text(body + path.read_text())
    line = one_line_error(migrate(db_url, root))
    assert line == f"dbtool: cannot load migration migrations/crm/crm_0002_exit.py: {why}"
    assert one(db_url, "SELECT to_regclass('crm.exit_test')") is None


@pytest.mark.parametrize("raised", ["SystemExit(0)", "KeyboardInterrupt()", "RuntimeError('boom')"])
def test_a_migration_step_that_exits_while_running_is_a_failure_and_rolled_back(db_url, tmp_path, raised):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_exit", {"140_a.sql": "CREATE TABLE crm.exit_test (id int);\n"})
    path = root / "migrations" / "crm" / "crm_0002_exit.py"
    path.write_text(path.read_text() + f"def _out(conn):\n    raise {raised}\nstep(_out)\n")
    line = one_line_error(migrate(db_url, root))
    assert line.startswith("dbtool: migration crm_0002_exit (migrations/crm/crm_0002_exit.py) failed: ")
    assert line.endswith("; nothing was applied")
    assert one(db_url, "SELECT to_regclass('crm.exit_test')") is None
    assert applies_of(db_url, "crm_0002_exit") == 0


def test_a_rollback_step_that_exits_is_a_failure_and_rolls_nothing_back(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_exit", {"140_a.sql": "CREATE TABLE crm.exit_test (id int);\n"})
    path = root / "migrations" / "crm" / "crm_0002_exit.py"
    path.write_text(path.read_text() + "def _out(conn):\n    raise SystemExit(0)\nstep('SELECT 1', _out)\n")
    assert migrate(db_url, root).returncode == 0
    out = run_dbtool("rollback", "--module", "crm", "--yes", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert one_line_error(out) == ("dbtool: rollback of crm_0002_exit (migrations/crm/crm_0002_exit.py) failed: "
                                   "it raised SystemExit(0); nothing was rolled back")
    assert one(db_url, "SELECT to_regclass('crm.exit_test')") is not None


def test_a_lock_timeout_in_reset_names_the_blocker(db_url):
    with psycopg.connect(db_url, application_name="report-job") as blocker:
        blocker.execute("SELECT count(*) FROM infra.customers")
        out = run_dbtool("reset", "--module", "infra", "--yes", "--ddl-lock-timeout", "1s", "--database-url", db_url)
        line = one_line_error(out)
        assert line.startswith("dbtool: reset infra failed: canceling statement due to lock timeout; ")
        assert f"blocked by pid {blocker.info.backend_pid} (report-job" in line and "lost the database" not in line
        assert line.endswith("; nothing was dropped")
    assert one(db_url, "SELECT to_regclass('infra.customers')") is not None


# -- 22: trailing comments, failed concurrent builds, FIFOs ----------------------------------------

def test_a_file_whose_last_line_ends_in_a_comment_is_not_truncated(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_done", {"140_done.sql": (
        "CREATE TABLE IF NOT EXISTS crm.done_test (id int); -- done\n/* and a closing note */\n")})
    out = migrate(db_url, root)
    assert out.returncode == 0, out.stderr
    assert one(db_url, "SELECT to_regclass('crm.done_test')") is not None


@pytest.mark.parametrize("tail, inside", [
    ("SELECT $$ never closed;\n", "a dollar-quoted string"),
    ("SELECT 'never closed;\n", "a quoted string"),
    ("/* never closed;\n", "a comment"),
    ("SELECT 1\n", "a statement"),
])
def test_a_file_ending_inside_a_string_or_comment_is_refused(db_url, tmp_path, tail, inside):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_cut", {"140_cut.sql": "CREATE TABLE crm.cut_test (id int);\n" + tail})
    line = one_line_error(migrate(db_url, root))
    assert line.startswith(f"dbtool: sql/crm/140_cut.sql:2: the file ends inside {inside} (")
    assert one(db_url, "SELECT to_regclass('crm.cut_test')") is None


def test_a_non_transactional_failure_says_what_stays_applied(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0009_two", {
        "900_a.sql": "-- transactional: false\nCREATE TABLE IF NOT EXISTS planning.two_a (id int);\n",
        "910_b.sql": "-- transactional: false\nCREATE TABLE planning.two_b (id int, id int);\n"}, transactional=False)
    line = one_line_error(migrate(db_url, root))
    assert line.endswith("(migration planning_0009_two; not transactional: sql/planning/900_a.sql stays applied)")


@pytest.fixture
def fifo_project(tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_fifo", {"140_fifo.sql": "SELECT 1;\n"})
    path = root / "sql" / "crm" / "140_fifo.sql"
    path.unlink()
    os.mkfifo(path)
    return root


def test_a_fifo_in_sql_is_refused_before_the_lock(db_url, fifo_project):
    with psycopg.connect(db_url, autocommit=True) as holder:  # the lock is taken: refused before asking for it
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        out = migrate(db_url, fifo_project, "--lock-timeout", "5", timeout=30)
    assert one_line_error(out) == ("dbtool: sql/crm/140_fifo.sql: not a regular file (a FIFO): refusing to read it "
                                   "(migration crm_0002_fifo; nothing was applied)")
    assert "waiting" not in out.stderr


def test_a_fifo_in_sql_never_blocks_dry_run_status_or_validate(db_url, fifo_project):
    env = {"DBTOOL_ROOT": str(fifo_project)}
    out = run_dbtool("migrate", "--dry-run", "--database-url", db_url, env=env, timeout=30)
    assert "not a regular file (a FIFO)" in one_line_error(out)
    # An applied file replaced by a FIFO: reported as missing, never read.
    os.unlink(fifo_project / "sql" / "crm" / "140_fifo.sql")
    (fifo_project / "sql" / "crm" / "140_fifo.sql").write_text("SELECT 1;\n")
    assert migrate(db_url, fifo_project).returncode == 0
    os.unlink(fifo_project / "sql" / "crm" / "140_fifo.sql")
    os.mkfifo(fifo_project / "sql" / "crm" / "140_fifo.sql")
    out = run_dbtool("status", "--database-url", db_url, "--module", "crm", env=env, timeout=30)
    assert out.returncode == 0 and "changed since applied: sql/crm/140_fifo.sql" in out.stdout
    out = run_dbtool("validate", "--database-url", db_url, "--module", "crm", env=env, timeout=30)
    assert out.returncode == 1 and "sql/crm/140_fifo.sql" in out.stdout


# -- 20: no limit on statement size or nesting; broken migration files in one line ----------------

def test_a_4000_row_insert_and_a_deeply_nested_expression_apply(db_url, tmp_path):
    root = copy_project(tmp_path)
    rows = ",\n".join(f"({i}, 'row {i}; ''quoted''', $${i}$$)" for i in range(4000))
    nested = "(" * 500 + "1" + ")" * 500
    add_migration(root, "crm", "crm_0002_big", {"140_big.sql": (
        "CREATE TABLE IF NOT EXISTS crm.big_test (id int PRIMARY KEY, label text, raw text);\n"
        f"INSERT INTO crm.big_test VALUES\n{rows}\nON CONFLICT DO NOTHING;\n"
        f"CREATE OR REPLACE VIEW crm.nested_test AS SELECT {nested} AS one;\n")},
        rollback="DROP VIEW crm.nested_test; DROP TABLE crm.big_test")
    out = migrate(db_url, root)
    assert out.returncode == 0, out.stderr
    assert one(db_url, "SELECT count(*) FROM crm.big_test") == 4000
    assert one(db_url, "SELECT one FROM crm.nested_test") == 1


def test_a_dependency_cycle_is_one_line_naming_the_files(db_url, tmp_path):
    root = copy_project(tmp_path)
    for mid, other in (("crm_0008_a", "crm_0009_b"), ("crm_0009_b", "crm_0008_a")):
        (root / "migrations" / "crm" / f"{mid}.py").write_text(f"__depends__ = {{'{other}'}}\n")
    line = one_line_error(migrate(db_url, root))
    assert line == ("dbtool: cannot load migrations: their __depends__ form a cycle: migrations/crm/crm_0008_a.py, "
                    "migrations/crm/crm_0009_b.py")


def test_a_migration_file_with_bad_bytes_or_an_unknown_dependency_is_one_line(db_url, tmp_path):
    root = copy_project(tmp_path)
    path = root / "migrations" / "crm" / "crm_0009_bytes.py"
    path.write_bytes(b"# caf\xe9\n__depends__ = {'crm_0001_initial'}\n")
    assert one_line_error(migrate(db_url, root)) == (
        "dbtool: cannot load migration migrations/crm/crm_0009_bytes.py: not UTF-8 at byte 5")
    path.write_text("__depends__ = {'crm_0000_nowhere'}\n")
    assert one_line_error(migrate(db_url, root)) == (
        "dbtool: cannot load migration migrations/crm/crm_0009_bytes.py: __depends__ names a migration that does "
        "not exist (crm_0000_nowhere)")


# -- 23: yoyo's own .sql migrations and post-apply hooks are refused -------------------------------

def test_a_sql_file_in_migrations_is_refused_before_the_lock(db_url, tmp_path):
    root = copy_project(tmp_path)
    (root / "migrations" / "crm" / "crm_0009_raw.sql").write_text("CREATE TABLE crm.raw_test (id int);\n")
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        line = one_line_error(migrate(db_url, root, "--lock-timeout", "5"))
    assert line.startswith("dbtool: migrations/crm/crm_0009_raw.sql: yoyo would run this .sql file as it is")
    assert "write the migration as migrations/crm/crm_0009_raw.py calling apply_files" in line
    assert one(db_url, "SELECT to_regclass('crm.raw_test')") is None


def test_a_fifo_in_migrations_is_refused_not_skipped(db_url, tmp_path):
    root = copy_project(tmp_path)
    os.mkfifo(root / "migrations" / "crm" / "crm_0009_fifo.py")
    assert one_line_error(migrate(db_url, root, timeout=30)) == (
        "dbtool: migrations/crm/crm_0009_fifo.py: not a regular file (yoyo would skip it as if it were not there)")


def test_a_post_apply_hook_is_refused(db_url, tmp_path):
    root = copy_project(tmp_path)
    (root / "migrations" / "crm" / "post-apply.py").write_text("from yoyo import step\nstep('SELECT 1')\n")
    assert "dbtool does not run yoyo post-apply hooks" in one_line_error(migrate(db_url, root))


# -- the splitter, directly ------------------------------------------------------------------------

def test_split_follows_psql():
    text = ("SELECT 'a;b', \"x;y\", $$ ; $$, $f$ $$ ; $f$, E'it\\'s;', 'it''s;' /* ; /* ; */ ; */ ;\n"
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
            "BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END;\n"
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO x VALUES (1); INSERT INTO y VALUES (2));\n"
            "; -- empty\nSELECT 2; -- done\n")
    stmts, inside = split(text)
    assert inside is None
    assert [s.line for s in stmts] == [1, 2, 4, 6]
    assert stmts[1].text.endswith("END;") and stmts[-1].text == "SELECT 2;"
    assert split("SELECT 1;\nSELECT (1;\n")[1] == "parentheses"
