"""Issue 12, the rest of items 15 and 16: no command waits without end behind another session's lock, and a
killed multi-word dbtool command's session is recognised as stale.

Behind a session holding ACCESS EXCLUSIVE on a module table (LOCK TABLE, ALTER TABLE, a migration), `backup`,
`restore`, `seed` (and `--clear`), `erase-user`, `analytics sync` and the three `jobs` wait at most
`--lock-timeout` (DBTOOL_DATA_LOCK_TIMEOUT, 10 s), then stop with exit 1 in one line naming the holder (pid,
application, what it holds, its query), having changed nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import psycopg
import pytest

from dbtool import lock
from dbtool.analytics.db import init
from dbtool.analytics.sync import sync
from dbtool.errors import EXIT_FINDINGS, EXIT_USAGE
from helpers import add_migration, copy_project, row_counts, run_dbtool

PHONE = "+5511922223333"


def one_line_error(out) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


def locked_out(db_url: str, table: str, *args: str, env: dict | None = None, app: str = "ddl-job",
               mode: str = "ACCESS EXCLUSIVE"):
    """Run `dbtool *args --lock-timeout 1` while another session holds `mode` on `table`:
    (the run, the holder's pid, seconds the run took)."""
    with psycopg.connect(db_url, application_name=app) as blocker:
        blocker.execute(f"LOCK TABLE {table} IN {mode} MODE")  # a test constant; held until the block ends
        started = time.monotonic()
        out = run_dbtool(*args, "--lock-timeout", "1", "--database-url", db_url, env=env, timeout=90)
        took = time.monotonic() - started
        pid = blocker.info.backend_pid
    return out, pid, took


def assert_named(out, command: str, pid: int, table: str, *, outcome: str, app: str = "ddl-job",
                 mode: str = "AccessExclusiveLock") -> str:
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS, out.stderr
    assert line.startswith(f"dbtool: {command} gave up after 1s waiting for a table lock "
                           "(--lock-timeout, DBTOOL_DATA_LOCK_TIMEOUT): "), line
    assert f"pid {pid} ({app}, idle in transaction) holds {mode} on {table}" in line, line
    assert f"LOCK TABLE {table}" in line and line.endswith(outcome), line
    return line


# -- backup and restore ---------------------------------------------------------------------------------------

def test_backup_behind_a_table_lock_names_the_holder_and_writes_nothing(db_url, tmp_path):
    out, pid, took = locked_out(db_url, "crm.product", "backup", "--out", str(tmp_path / "b.dump"))
    assert_named(out, "backup", pid, "crm.product", outcome="; nothing written")
    assert list(tmp_path.iterdir()) == [] and took < 30


def test_restore_behind_a_table_lock_names_the_holder_and_changes_nothing(postgresql, db_url, tmp_path):
    archive = tmp_path / "b.dump"
    assert run_dbtool("backup", "--out", str(archive), "--database-url", db_url).returncode == 0
    postgresql.execute("INSERT INTO chatbot.users (phone_number) VALUES (%s)", (PHONE,))  # not in the archive
    postgresql.commit()
    out, pid, took = locked_out(db_url, "planning.stores", "restore", "--force", str(archive),
                                mode="ACCESS SHARE", app="report")
    assert_named(out, "restore", pid, "planning.stores", app="report", mode="AccessShareLock",
                 outcome="; nothing restored (one transaction, rolled back)")
    assert postgresql.execute("SELECT count(*) FROM chatbot.users WHERE phone_number = %s", (PHONE,)).fetchone() == (1,)
    assert took < 30


# -- seed ---------------------------------------------------------------------------------------------------

def test_seed_behind_a_table_lock_names_the_holder_and_changes_nothing(postgresql, db_url):
    tables = [("crm", "product"), ("crm", "customer")]
    before = row_counts(postgresql, tables)
    postgresql.rollback()
    out, pid, took = locked_out(db_url, "crm.customer", "seed", "--module", "crm")
    assert_named(out, "seed", pid, "crm.customer", outcome="; nothing changed")
    assert row_counts(postgresql, tables) == before and took < 30
    assert postgresql.execute("SELECT to_regclass('dbtool.seeded_row')").fetchone() == (None,)  # rolled back too


def test_seed_clear_behind_a_table_lock_names_the_holder_and_changes_nothing(postgresql, db_url):
    assert run_dbtool("seed", "--module", "crm", "--database-url", db_url).returncode == 0
    tables = [("crm", "product"), ("crm", "customer"), ("dbtool", "seeded_row")]
    before = row_counts(postgresql, tables)
    postgresql.rollback()
    assert before["crm.product"] > 0
    out, pid, _ = locked_out(db_url, "crm.product", "seed", "--module", "crm", "--clear")
    assert_named(out, "seed --clear", pid, "crm.product", outcome="; nothing changed")
    assert row_counts(postgresql, tables) == before


def test_the_variable_sets_the_wait_of_the_data_commands(postgresql, db_url):
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE crm.customer IN ACCESS EXCLUSIVE MODE")
        out = run_dbtool("seed", "--module", "crm", "--database-url", db_url,
                         env={"DBTOOL_DATA_LOCK_TIMEOUT": "0.5"}, timeout=60)
    assert out.returncode == EXIT_FINDINGS and "seed gave up after 0.5s" in one_line_error(out)


@pytest.mark.parametrize("value", ["0", "nan", "-1", "soon"])
def test_a_bad_data_lock_wait_is_a_usage_error(value):
    for args in (["seed"], ["erase-user", "--phone", PHONE, "--yes"], ["jobs", "roll-up"], ["backup"],
                 ["analytics", "sync"]):
        out = run_dbtool(*args, "--lock-timeout", value, "--database-url", "postgresql://u@127.0.0.1:1/x")
        assert out.returncode == EXIT_USAGE and "Traceback" not in out.stderr, (args, out.stderr)
    out = run_dbtool("seed", env={"DBTOOL_DATA_LOCK_TIMEOUT": value, "DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert out.returncode == EXIT_USAGE and "DBTOOL_DATA_LOCK_TIMEOUT" in one_line_error(out)


# -- erase-user and analytics sync ------------------------------------------------------------------------------

@pytest.fixture
def synced(postgresql, db_url, tmp_path) -> Path:
    """A user with a session and 3 messages, synced into a new DuckDB file; the file."""
    pg = postgresql
    user = pg.execute("INSERT INTO chatbot.users (phone_number, consent, consent_at) VALUES (%s, true, now())"
                      " RETURNING id", (PHONE,)).fetchone()[0]
    session = pg.execute("INSERT INTO chatbot.sessions (session_id, user_id) VALUES ('s1', %s) RETURNING id",
                         (user,)).fetchone()[0]
    pg.execute("INSERT INTO chatbot.messages (session_id, role, content) SELECT %s, 'user', 'oi ' || g"
               " FROM generate_series(1, 3) g", (session,))
    pg.commit()
    path = tmp_path / "a.duckdb"
    init(path)
    with duckdb.connect(str(path)) as duck, psycopg.connect(db_url) as conn:
        sync(conn, duck)
    return path


def duck_rows(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as duck:
        return duck.execute("SELECT count(*) FROM message_history").fetchall()[0][0]


def test_erase_user_behind_a_table_lock_names_the_holder_and_erases_nothing(postgresql, db_url, synced):
    out, pid, took = locked_out(db_url, "chatbot.messages", "erase-user", "--phone", PHONE, "--yes",
                                "--duckdb", str(synced))
    assert_named(out, "erase-user", pid, "chatbot.messages", outcome="; nothing erased anywhere")
    assert postgresql.execute("SELECT count(*) FROM chatbot.messages").fetchone() == (3,)
    assert duck_rows(synced) == 3 and took < 30


@pytest.mark.parametrize("table", ["chatbot.messages", "chatbot.users"])
def test_analytics_sync_behind_a_table_lock_names_the_holder_and_copies_nothing(postgresql, db_url, tmp_path,
                                                                              table):
    postgresql.execute("INSERT INTO chatbot.users (phone_number, consent, consent_at) VALUES (%s, true, now())",
                       (PHONE,))
    postgresql.commit()
    path = tmp_path / "a.duckdb"
    init(path)
    # messages: the horizon's read waits; users: the COPY of the key sets (in the pumping thread) waits.
    out, pid, took = locked_out(db_url, table, "analytics", "sync", "--path", str(path))
    assert_named(out, "analytics sync", pid, table, outcome="; nothing copied")
    with duckdb.connect(str(path), read_only=True) as duck:
        assert duck.execute("SELECT count(*) FROM analytics_sync_state").fetchall() == [(0,)]
    assert took < 30


# -- jobs ---------------------------------------------------------------------------------------------------

@pytest.fixture
def old_sessions(postgresql):
    """An expired active session and a closed one 400 days old, each with a message."""
    pg = postgresql
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    user = pg.execute("INSERT INTO chatbot.users (phone_number) VALUES (%s) RETURNING id", (PHONE,)).fetchone()[0]
    for key, active in (("expired", True), ("closed", False)):
        s = pg.execute("INSERT INTO chatbot.sessions (session_id, user_id, is_active, created_at, last_activity_at,"
                       " expires_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                       (key, user, active, long_ago, long_ago, long_ago + dt.timedelta(days=1))).fetchone()[0]
        pg.execute("INSERT INTO chatbot.messages (session_id, role, content, created_at) VALUES (%s, 'user', 'oi', %s)",
                   (s, long_ago))
    pg.commit()
    return pg


def chatbot_state(pg) -> tuple:
    state = pg.execute("SELECT (SELECT count(*) FROM chatbot.sessions WHERE is_active),"
                       " (SELECT count(*) FROM chatbot.sessions), (SELECT count(*) FROM chatbot.messages),"
                       " (SELECT count(*) FROM chatbot.metrics_daily)").fetchone()
    pg.rollback()
    return state


@pytest.mark.parametrize("job,table", [
    (["expire-sessions"], "chatbot.sessions"),
    (["roll-up"], "chatbot.messages"),
    (["purge", "--older-than", "180d", "--no-duckdb"], "chatbot.sessions"),
])
def test_a_job_behind_a_table_lock_names_the_holder_and_does_nothing(old_sessions, db_url, job, table):
    before = chatbot_state(old_sessions)
    assert before == (1, 2, 2, 0)
    out, pid, took = locked_out(db_url, table, "jobs", *job)
    assert_named(out, f"jobs {job[0]}", pid, table, outcome="; nothing done")
    assert chatbot_state(old_sessions) == before and took < 30


def test_a_job_behind_a_row_lock_stops_and_names_the_sessions_that_may_hold_it(old_sessions, db_url):
    with psycopg.connect(db_url, application_name="the-app") as app:
        app.execute("UPDATE chatbot.sessions SET turn_id = turn_id + 1 WHERE session_id = 'expired'")  # uncommitted
        out = run_dbtool("jobs", "expire-sessions", "--lock-timeout", "1", "--database-url", db_url, timeout=60)
        pid = app.info.backend_pid
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS, out.stderr
    assert line.startswith("dbtool: jobs expire-sessions gave up after 1s waiting for a table lock"), line
    assert (f"pid {pid} (the-app, idle in transaction) holds RowExclusiveLock on chatbot.sessions "
            "(may hold the row lock)") in line, line
    assert chatbot_state(old_sessions)[0] == 1


# -- item 15's kind: sessions of killed multi-word commands -------------------------------------------------------

def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("command", ["jobs purge", "analytics sync", "seed --clear", "jobs expire-sessions"])
def test_application_name_of_a_multi_word_command_is_recognised(command):
    app = lock.application_name(command)
    assert app == f"dbtool {command} host={lock.this_host()} pid={os.getpid()}"
    session = lock.Session(1, app, "local", "active", "", "00:00:01")
    assert session.dbtool == (lock.this_host(), os.getpid())


def test_a_long_host_name_never_cuts_the_pid_nor_merges_two_machines(monkeypatch):
    names = ["webserver-production-eu-west-01", "webserver-production-eu-west-02"]
    hosts = []
    for name in names:
        monkeypatch.setattr(socket, "gethostname", lambda name=name: name + ".example.com")
        app = lock.application_name("jobs expire-sessions")
        assert len(app.encode()) <= 63 and app.endswith(f" pid={os.getpid()}"), app
        assert lock.Session(1, app, "local", "active", "", "0").dbtool == (lock.this_host(), os.getpid())
        hosts.append(lock.this_host())
    assert hosts[0] != hosts[1] and all(len(h) <= lock.HOST_MAX for h in hosts)
    assert lock.application_name("x" * 100).endswith(f" host={hosts[1]} pid={os.getpid()}")


@pytest.mark.parametrize("command", ["jobs purge", "analytics sync"])
def test_a_killed_multi_word_commands_session_is_stale_and_a_live_ones_is_not(db_url, command):
    live = subprocess.Popen(["sleep", "60"])
    gone = dead_pid()
    try:
        with psycopg.connect(db_url, application_name=f"dbtool {command} host={lock.this_host()} pid={gone}") as dead, \
                psycopg.connect(db_url, application_name=f"dbtool {command} host={lock.this_host()} pid={live.pid}"
                                ) as alive, psycopg.connect(db_url, autocommit=True) as me:
            stale = {s.pid for s in lock.stale_sessions(me)}
            assert dead.info.backend_pid in stale
            assert alive.info.backend_pid not in stale
    finally:
        live.kill()
        live.wait()


def test_migrate_ends_the_session_of_a_killed_jobs_run_holding_a_lock(db_url, tmp_path):
    """A `dbtool jobs purge` killed in the middle of a long statement: its backend runs on, holding its locks;
    the next migrate recognises it by its application_name and ends it."""
    root = copy_project(tmp_path)
    add_migration(root, "chatbot", "chatbot_0099_alter", {"990_alter.sql":
                  "ALTER TABLE chatbot.sessions ADD COLUMN IF NOT EXISTS lock_test int;\n"},
                  rollback="ALTER TABLE chatbot.sessions DROP COLUMN lock_test")
    app = f"dbtool jobs purge host={lock.this_host()} pid={dead_pid()}"
    stale = psycopg.connect(db_url, autocommit=True, application_name=app)
    try:
        stale.pgconn.send_query(b"BEGIN; LOCK TABLE chatbot.sessions IN ROW EXCLUSIVE MODE; SELECT pg_sleep(60)")
        with psycopg.connect(db_url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while not (row := watch.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                                            " AND query LIKE '%%pg_sleep%%' AND state = 'active'", (app,)).fetchone()):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        out = run_dbtool("migrate", "--module", "chatbot", "--ddl-lock-timeout", "3s", "--database-url", db_url,
                         env={"DBTOOL_ROOT": str(root)}, timeout=90)
    finally:
        stale.close()
    assert out.returncode == 0, out.stderr
    assert f"terminated the stale session pid {row[0]} ({app}," in out.stderr


def test_a_job_skipped_behind_a_killed_runs_session_says_its_process_is_gone(db_url):
    from dbtool import jobs

    dead = dead_pid()
    app = f"dbtool jobs purge host={lock.this_host()} pid={dead}"
    with psycopg.connect(db_url, application_name=app) as killed:  # its statement still running, lock held
        killed.execute("SELECT pg_advisory_xact_lock(%s, %s)", (jobs.LOCK_CLASS, jobs.JOB_KEYS["purge"]))
        out = run_dbtool("jobs", "purge", "--older-than", "180d", "--no-duckdb", "--lock-wait", "0.3",
                         "--database-url", db_url, timeout=60)
        pid = killed.info.backend_pid
    line = one_line_error(out)
    assert out.returncode == EXIT_FINDINGS, out.stderr
    assert line.startswith("dbtool: jobs purge: skipped after waiting 0.3s, nothing done: another run holds its "
                           f"lock: pid {pid} ({app}, from local"), line
    assert line.endswith(f"; its process, pid {dead} on this machine, is gone: the server ends the session when its "
                         f"statement finishes, or now with SELECT pg_terminate_backend({pid})"), line
