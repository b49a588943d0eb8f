"""Issue 6: concurrency, crashes, slow locks and bad input never leave a mess."""

from __future__ import annotations

import json
import random
import signal
import time

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from dbtool.config import Target
from dbtool.errors import MigrationError
from dbtool.lock import LOCK_CLASS, LOCK_OBJ
from dbtool.migration_steps import split_statements
from dbtool.paths import modules
from helpers import add_migration, catalog_of, copy_project, finish_dbtool, run_dbtool, start_dbtool


def one_line_error(out) -> str:
    """The last stderr line, asserting there is no traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


# -- concurrency and crashes -----------------------------------------------------------------

def test_eight_concurrent_migrates_apply_each_migration_once(empty_url):
    procs = [start_dbtool("migrate", "--database-url", empty_url) for _ in range(8)]
    try:
        done = [finish_dbtool(p, timeout=180) for p in procs]
    finally:
        for p in procs:  # a run left over by a failure above: killed, its pipes closed
            if p.returncode is None:
                p.kill()
                p.communicate()
    results = [(d.returncode, d.stderr) for d in done]
    assert [rc for rc, _ in results] == [0] * 8, results
    with psycopg.connect(empty_url) as conn:
        applies = dict(conn.execute("SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply' "
                                    "GROUP BY migration_id").fetchall())
    on_disk = [m.id for m in migrate_lib.load(modules())]
    assert "crm_0001_initial" in on_disk and applies == {mid: 1 for mid in on_disk}
    assert sum("nothing to apply" in err for _, err in results) == 7
    assert run_dbtool("validate", "--database-url", empty_url).returncode == 0


def test_waiting_run_names_the_lock_holder_and_gives_up_cleanly(db_url):
    with psycopg.connect(db_url, autocommit=True, application_name="dbtool migrate host=ci pid=4242") as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        pid = holder.info.backend_pid
        out = run_dbtool("migrate", "--database-url", db_url, "--lock-timeout", "1")
    assert out.returncode == 1
    assert f"held by pid {pid} (dbtool migrate host=ci pid=4242" in out.stderr
    assert one_line_error(out).startswith("dbtool: gave up after 1s waiting for the migration lock")


def test_read_only_commands_take_no_lock(db_url):
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        assert run_dbtool("status", "--database-url", db_url).returncode == 0
        assert run_dbtool("validate", "--database-url", db_url).returncode == 0


def test_stale_yoyo_lock_row_is_cleared_and_reported(db_url, postgresql):
    postgresql.close()  # no session left that could hold the row (the fixture's would be one)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 99999)")
    out = run_dbtool("migrate", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "cleared a stale yoyo lock left by pid 99999" in out.stderr


SLOW = ("CREATE TABLE IF NOT EXISTS crm.slow_test (id int);\n"
        "SELECT pg_sleep(3);\n"
        "CREATE INDEX IF NOT EXISTS slow_test_id_idx ON crm.slow_test (id);\n")


def wait_for_query(url: str, pattern: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                            (pattern,)).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"no session ran {pattern!r}")


def test_kill_9_in_the_middle_of_a_migration_needs_no_manual_step(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_slow", {"140_slow.sql": SLOW}, rollback="DROP TABLE crm.slow_test")
    env = {"DBTOOL_ROOT": str(root)}
    proc = start_dbtool("migrate", "--database-url", db_url, env=env)
    try:
        wait_for_query(db_url, "SELECT pg_sleep(3)%")
    finally:
        proc.kill()  # SIGKILL
        killed = finish_dbtool(proc)
    assert killed.returncode == -signal.SIGKILL
    with psycopg.connect(db_url) as conn:  # the killed migration is absent, not half-applied
        assert conn.execute("SELECT to_regclass('crm.slow_test')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM _yoyo_migration WHERE migration_id = 'crm_0002_slow'"
                            ).fetchone()[0] == 0

    out = run_dbtool("migrate", "--database-url", db_url, env=env)
    assert out.returncode == 0, out.stderr
    assert "cleared a stale yoyo lock" in out.stderr
    assert "applied crm_0002_slow" in out.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('crm.slow_test_id_idx')").fetchone()[0] is not None


def test_migration_blocked_by_a_long_transaction_fails_naming_the_blocker(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter",
                  {"140_alter.sql": "ALTER TABLE crm.product ADD COLUMN IF NOT EXISTS vintage integer;\n"})
    before = catalog_of(db_url, modules())
    with psycopg.connect(db_url, application_name="report-job") as blocker:
        blocker.execute("SELECT count(*) FROM crm.product")  # holds ACCESS SHARE until the transaction ends
        t0 = time.monotonic()
        out = run_dbtool("migrate", "--database-url", db_url, "--ddl-lock-timeout", "1s",
                         env={"DBTOOL_ROOT": str(root)})
        elapsed = time.monotonic() - t0
        line = one_line_error(out)
        assert out.returncode == 1
        assert "sql/crm/140_alter.sql:1: canceling statement due to lock timeout" in line
        assert f"blocked by pid {blocker.info.backend_pid} (report-job" in line, line
        assert "SELECT count(*) FROM crm.product" in line
    assert elapsed < 30
    assert catalog_of(db_url, modules()) == before


def test_file_directive_overrides_the_lock_timeout(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {
        "140_alter.sql": "-- lock_timeout: 200ms\nALTER TABLE crm.product ADD COLUMN IF NOT EXISTS vintage int;\n"})
    with psycopg.connect(db_url) as blocker:
        blocker.execute("SELECT count(*) FROM crm.product")
        t0 = time.monotonic()
        out = run_dbtool("migrate", "--database-url", db_url, "--ddl-lock-timeout", "60s",
                         env={"DBTOOL_ROOT": str(root)})
        assert out.returncode == 1 and "lock timeout" in out.stderr
        assert time.monotonic() - t0 < 20  # not the 60 s of the command line


CIC = ("-- transactional: false\n"
       "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS store_clusters_cluster_name_idx\n"
       "    ON planning.store_clusters (cluster_name);\n")


def index_valid(url: str, name: str):
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)).fetchone()
    return row[0] if row else None


def test_failed_concurrent_index_build_is_repaired_by_the_next_run(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0002_cluster_name", {"100_cluster_name_idx.sql": CIC},
                  rollback="DROP INDEX IF EXISTS planning.store_clusters_cluster_name_idx", transactional=False)
    env = {"DBTOOL_ROOT": str(root)}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'dup'), ('b', 'dup')")
    out = run_dbtool("migrate", "--database-url", db_url, env=env)
    assert out.returncode == 1
    assert one_line_error(out).startswith("dbtool: sql/planning/100_cluster_name_idx.sql:2: could not create unique")
    assert index_valid(db_url, "planning.store_clusters_cluster_name_idx") is False  # left INVALID

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM planning.store_clusters WHERE cluster_id = 'b'")
    out = run_dbtool("migrate", "--database-url", db_url, env=env)
    assert out.returncode == 0, out.stderr
    assert index_valid(db_url, "planning.store_clusters_cluster_name_idx") is True


def test_non_transactional_file_must_hold_one_statement(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0002_two", {"100_two.sql": CIC + "SELECT 1;\n"}, transactional=False)
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1 and "holds exactly one statement, found 2" in one_line_error(out)


TRUNC = """-- A file cut anywhere must apply whole or not at all.
CREATE TABLE IF NOT EXISTS crm.trunc_test (
    id integer PRIMARY KEY,
    label text NOT NULL DEFAULT 'semi;colon',
    score numeric(5,2) CHECK (score BETWEEN 0 AND 100)
);
CREATE INDEX IF NOT EXISTS trunc_test_label_idx ON crm.trunc_test (label);
DO $$ BEGIN
    CREATE TYPE crm.trunc_kind AS ENUM ('a', 'b');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER TABLE crm.trunc_test ADD COLUMN IF NOT EXISTS kind crm.trunc_kind;
COMMENT ON TABLE crm.trunc_test IS 'Used by the truncation test; it''s gone afterwards.';
CREATE INDEX IF NOT EXISTS trunc_test_kind_idx ON crm.trunc_test (kind) WHERE kind IS NOT NULL;
"""


def test_truncated_migration_file_applies_whole_or_not_at_all(db_url, tmp_path, monkeypatch):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_trunc", {"140_trunc.sql": TRUNC},
                  rollback="DROP TABLE IF EXISTS crm.trunc_test; DROP TYPE IF EXISTS crm.trunc_kind")
    monkeypatch.setenv("DBTOOL_ROOT", str(root))
    target = Target(db_url, "test")
    before = catalog_of(db_url, ["crm"])
    cuts = random.Random(20261122).sample(range(1, len(TRUNC)), 50)
    outcomes = {"failed": 0, "applied": 0}
    for cut in cuts:
        text = TRUNC[:cut]
        (root / "sql" / "crm" / "140_trunc.sql").write_text(text)
        try:
            migrate_lib.migrate(target, ["crm"], say=lambda _m: None)
        except MigrationError:
            outcomes["failed"] += 1
            assert catalog_of(db_url, ["crm"]) == before, f"cut at {cut} left a partial migration"
            continue
        outcomes["applied"] += 1
        stmts = split_statements(text)
        assert all(s.text.endswith(";") for s in stmts), f"cut at {cut} applied an unterminated statement"
        after = catalog_of(db_url, ["crm"])
        added = {n for kind in after.by_kind for n in after.objects(kind).keys() - before.objects(kind).keys()}
        assert all(".trunc_" in n for n in added) and bool(added) == bool(stmts)
        migrate_lib.rollback(target, ["crm"], say=lambda _m: None)
        assert catalog_of(db_url, ["crm"]) == before
    assert outcomes["failed"] >= 40  # almost every cut lands inside a statement


# -- bad input -----------------------------------------------------------------------------

def test_syntax_error_names_file_and_line_and_changes_nothing(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "infra", "infra_0002_bad", {
        "100_bad.sql": "CREATE TABLE IF NOT EXISTS infra.ok_one (id int);\n\nCREATE TABLE infra.bad (\n"
                       "    id int,,\n);\n"})
    before = catalog_of(db_url, modules())
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1
    assert one_line_error(out) == ('dbtool: sql/infra/100_bad.sql:4: syntax error at or near ","'
                                   " (migration infra_0002_bad; nothing was applied)")
    assert catalog_of(db_url, modules()) == before


def test_missing_sql_file_is_named_and_nothing_runs(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "infra", "infra_0002_two", {"100_a.sql": "CREATE TABLE infra.a (id int);\n",
                                                    "110_b.sql": "SELECT 1;\n"})
    (root / "sql" / "infra" / "110_b.sql").unlink()
    before = catalog_of(db_url, modules())
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1
    assert one_line_error(out) == "dbtool: sql/infra/110_b.sql: file not found (needed by migration infra_0002_two)"
    assert catalog_of(db_url, modules()) == before


def test_unreadable_sql_file_is_named(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "infra", "infra_0002_dir", {"100_a.sql": "SELECT 1;\n"})
    (root / "sql" / "infra" / "100_a.sql").unlink()
    (root / "sql" / "infra" / "100_a.sql").mkdir()  # unreadable as a file, even for root
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1 and "sql/infra/100_a.sql: cannot read: Is a directory" in one_line_error(out)


def test_broken_migration_module_is_reported(db_url, tmp_path):
    root = copy_project(tmp_path)
    (root / "migrations" / "crm" / "crm_0002_broken.py").write_text("step(\n")
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1 and "cannot load migration" in one_line_error(out)


def test_unknown_module_is_a_usage_error(db_url):
    out = run_dbtool("migrate", "--module", "billing", "--database-url", db_url)
    assert out.returncode == 2
    assert one_line_error(out) == "dbtool: unknown module billing (known: chatbot, crm, infra, planning)"


def test_bad_timeout_value_is_a_usage_error(db_url):
    out = run_dbtool("migrate", "--ddl-lock-timeout", "10s -c work_mem=1", "--database-url", db_url)
    assert out.returncode == 2 and "give a duration" in one_line_error(out)


SECRET = "Sup3r-S3cret-PW"


@pytest.fixture
def password_role(pg_cluster, empty_db):
    """A role that must log in with a password (scram) on the test server."""
    hba = pg_cluster.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("local all pw_user scram-sha-256\n" + original)
    dbname = empty_db.info.dbname
    empty_db.autocommit = True
    empty_db.execute("SELECT pg_reload_conf()")
    empty_db.execute(f"CREATE ROLE pw_user LOGIN PASSWORD '{SECRET}'")
    empty_db.execute(f'ALTER DATABASE "{dbname}" OWNER TO pw_user')
    empty_db.execute("ALTER SCHEMA public OWNER TO pw_user")
    yield f"postgresql://pw_user:{{pw}}@/{dbname}?host={pg_cluster.sockdir}&port={pg_cluster.port}"
    hba.write_text(original)
    empty_db.execute("SELECT pg_reload_conf()")
    empty_db.execute(f'ALTER DATABASE "{dbname}" OWNER TO postgres')
    empty_db.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
    empty_db.execute("DROP OWNED BY pw_user CASCADE")
    empty_db.execute("DROP ROLE pw_user")


def test_wrong_password_exits_3_and_never_prints_the_password(password_role):
    wrong = password_role.format(pw="Not-" + SECRET)
    out = run_dbtool("migrate", "--database-url", wrong)
    assert out.returncode == 3
    assert "authentication failed" in one_line_error(out)
    assert SECRET not in out.stdout + out.stderr


def test_password_never_printed_by_a_successful_run(password_role):
    url = password_role.format(pw=SECRET)
    outs = [run_dbtool("migrate", "--database-url", url), run_dbtool("status", "--database-url", url),
            run_dbtool("validate", "--database-url", url), run_dbtool("migrate", "--database-url", url),
            run_dbtool("status", env={"DATABASE_URL": url})]
    assert [o.returncode for o in outs] == [0, 0, 0, 0, 0], outs[0].stderr
    for out in outs:
        assert SECRET not in out.stdout + out.stderr
        assert "pw_user@" in out.stderr  # it does say where it connected


def test_unreachable_host_exits_3(tmp_path):
    out = run_dbtool("migrate", "--database-url", f"postgresql://u:{SECRET}@127.0.0.1:1/db")
    assert out.returncode == 3
    line = one_line_error(out)
    assert line.startswith("dbtool: cannot connect to postgresql://u@127.0.0.1:1/db: server unreachable")
    assert SECRET not in out.stdout + out.stderr


def test_missing_database_exits_3(pg_cluster):
    out = run_dbtool("migrate", "--database-url", pg_cluster.conninfo("no_such_database"))
    assert out.returncode == 3
    assert 'database "no_such_database" does not exist' in one_line_error(out)


@pytest.fixture
def role_url(pg_cluster, empty_db):
    """make(name, attributes) -> URL of the empty test database as a new role; dropped afterwards."""
    empty_db.autocommit = True
    made = []

    def make(name: str, attributes: str) -> str:
        empty_db.execute(f"CREATE ROLE {name} {attributes}")
        made.append(name)
        return pg_cluster.conninfo(empty_db.info.dbname).replace("postgres@", f"{name}@")

    yield make
    for name in made:
        empty_db.execute(f"DROP OWNED BY {name}")
        empty_db.execute(f"DROP ROLE {name}")


def test_role_that_may_not_log_in_exits_3(role_url):
    out = run_dbtool("migrate", "--database-url", role_url("no_login", "NOLOGIN"))
    assert out.returncode == 3 and "refused this role" in one_line_error(out)


def test_role_without_create_privilege_exits_3_and_changes_nothing(role_url, empty_db):
    out = run_dbtool("migrate", "--database-url", role_url("low_priv", "LOGIN"))
    assert out.returncode == 3
    assert "refused this role: permission denied" in one_line_error(out)
    assert empty_db.execute("SELECT count(*) FROM pg_tables WHERE schemaname <> ALL(%s)",
                            (["pg_catalog", "information_schema"],)).fetchone()[0] == 0


# -- dry run and reset ---------------------------------------------------------------------

def test_dry_run_prints_pending_sql_and_changes_nothing(empty_url):
    out = run_dbtool("migrate", "--dry-run", "--module", "planning", "--database-url", empty_url)
    assert out.returncode == 0, out.stderr
    assert "-- pending: planning_0001_initial" in out.stderr
    assert "-- file: sql/planning/090_weekly_actuals.sql" in out.stdout
    assert "CONSTRAINT unique_workflow_week_store UNIQUE" in out.stdout
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regnamespace('planning')").fetchone()[0] is None


def test_reset_refuses_without_a_terminal_unless_yes(db_url):
    out = run_dbtool("reset", "--module", "planning", "--database-url", db_url, input="planning\n")
    assert out.returncode == 2 and "use --yes" in one_line_error(out)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('planning.stores')").fetchone()[0] is not None

    out = run_dbtool("reset", "--module", "planning", "--yes", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    status = run_dbtool("status", "--database-url", db_url, "--exit-code")
    assert status.returncode == 1
    assert "planning_0001_initial" in status.stdout and "pending" in status.stdout
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regnamespace('planning')").fetchone()[0] is None
        assert conn.execute("SELECT to_regclass('crm.product')").fetchone()[0] is not None
        assert conn.execute("SELECT count(*) FROM dbtool.applied_file WHERE module = 'planning'").fetchone()[0] == 0
    assert run_dbtool("migrate", "--database-url", db_url).returncode == 0
    assert run_dbtool("validate", "--database-url", db_url).returncode == 0


def test_malformed_url_is_a_usage_error_that_hides_the_password():
    # libpq parses a URL at once (usage error, 2) but a conninfo's port only when it connects (3).
    for url, rc, said in ((f"postgresql://app:{SECRET}@[::1/db", 2, "dbtool: invalid database URL from --database-url"),
                          (f"host=db password={SECRET} port=notaport", 3, "dbtool: cannot connect to ")):
        out = run_dbtool("validate", "--database-url", url)
        assert out.returncode == rc, out.stderr
        assert one_line_error(out).startswith(said)
        assert SECRET not in out.stdout + out.stderr
    out = run_dbtool("status", env={"DATABASE_URL": f"postgresql://app:{SECRET}@[::1/db"})
    assert out.returncode == 2 and "invalid database URL from DATABASE_URL" in one_line_error(out)
    assert SECRET not in out.stderr


@pytest.mark.parametrize("args", [("status",), ("stats",),
                                  ("analytics", "sync", "--create", "--path", "{tmp}/a.duckdb"),
                                  ("seed", "--module", "planning"), ("validate", "--from-sql")])
def test_role_without_privileges_gets_one_line_not_a_traceback(db_url, args, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS nobody_much")
        conn.execute("CREATE ROLE nobody_much LOGIN")
        conn.execute("REVOKE SELECT ON _yoyo_migration, _yoyo_log, dbtool.applied_file FROM PUBLIC")
    try:
        url = db_url.replace("postgresql://postgres@", "postgresql://nobody_much@")
        out = run_dbtool(*[a.format(tmp=tmp_path) for a in args], "--database-url", url)
        line = one_line_error(out)
        assert line.startswith("dbtool: ")
        assert out.returncode == 3 and "permission denied" in line, out.stderr
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY nobody_much")
            conn.execute("DROP ROLE nobody_much")


def test_status_and_validate_agree_on_a_migration_without_files(db_url, tmp_path):
    root = copy_project(tmp_path)
    (root / "migrations" / "infra" / "infra_0002_plain.py").write_text(
        "from yoyo import step\n__depends__ = {'infra_0001_initial'}\n"
        "step('COMMENT ON SCHEMA infra IS NULL', 'SELECT 1')\n")
    env = {"DBTOOL_ROOT": str(root)}
    assert run_dbtool("migrate", "--database-url", db_url, env=env).returncode == 0
    status = run_dbtool("status", "--module", "infra", "--exit-code", "--database-url", db_url, env=env)
    assert status.returncode == 0 and "pending" not in status.stdout
    out = run_dbtool("validate", "--module", "infra", "--format", "json", "--database-url", db_url, env=env)
    assert out.returncode == 0, out.stderr
    # The plain step's own effect (the schema lost its comment, informational), and no "pending" migration.
    assert [(f["severity"], f["kind"], f["object"], f["problem"], f["attribute"])
            for f in json.loads(out.stdout)["findings"]] == [("info", "schema", "infra", "differs", "comment")]


def test_a_waiting_run_names_the_holder_once(db_url):
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        out = run_dbtool("migrate", "--database-url", db_url, "--lock-timeout", "2.5")
    assert out.returncode == 1
    assert out.stderr.count("waiting up to 2.5s for the migration lock") == 1


def test_losing_the_lock_connection_stops_before_the_next_migration(empty_url):
    from dbtool.lock import LockLost

    target = Target(empty_url, "test")
    said: list[str] = []

    def kill_lock_session(msg: str) -> None:
        said.append(msg)
        if msg.startswith("applied chatbot_"):  # terminate our own lock session after the first migration
            with psycopg.connect(empty_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' "
                              "AND l.classid = %s AND l.objid = %s AND l.granted", (LOCK_CLASS, LOCK_OBJ))
            time.sleep(0.5)  # the watcher notices on its next poll

    with pytest.raises(LockLost, match="^the connection holding the migration lock was lost"):
        migrate_lib.migrate(target, modules(), say=kill_lock_session)
    applied = [m for m in said if m.startswith("applied ")]
    assert len(applied) == 1
