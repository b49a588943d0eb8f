"""Personal data in the analytics file: nowhere else on disk, gone when gone from PostgreSQL, and
reached by erase-user by default (issue 12).

- a sync streams PostgreSQL's rows into DuckDB through a pipe: a killed sync leaves no file behind;
- a sync converges: rows deleted in PostgreSQL (by anything) leave DuckDB too;
- `analytics sync --path` refuses a missing file unless --create;
- `erase-user` erases the default analytics file when it exists, fails when it cannot open it, and
  skips it only when told (--no-duckdb).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pytest

from analytics_helpers import add_messages, add_session, add_user, count, fresh_duck
from dbtool.analytics import sync as sync_mod
from dbtool.analytics.db import AnalyticsError, init
from dbtool.analytics.embeddings import add_embeddings
from dbtool.analytics.sync import sync
from dbtool.config import Target
from helpers import copy_project, finish_dbtool, run_dbtool, start_dbtool

A, B = "+5511955555555", "+5511966666666"


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: "), done.stderr
    return last


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- item 9: nothing on disk but the DuckDB file ------------------------------------------------

def test_kill_9_during_a_sync_leaves_no_file_behind(postgresql, db_url, tmp_path):
    session = add_session(postgresql, add_user(postgresql, A), "s-big")
    add_messages(postgresql, session, 300_000, content=f"my phone is {A} and I live at Rua X")
    postgresql.commit()
    tmp, duck_dir = tmp_path / "tmp", tmp_path / "duck"
    tmp.mkdir()
    duck_dir.mkdir()
    proc = start_dbtool("analytics", "sync", "--create", "--database-url", db_url,
                        "--path", str(duck_dir / "a.duckdb"), env={"TMPDIR": str(tmp)})
    deadline = time.monotonic() + 60
    with psycopg.connect(db_url, autocommit=True) as watch:
        while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s"
                                " AND state = 'active' AND query ~ '^\\s*COPY'",
                                ("dbtool analytics sync %",)).fetchone()[0]:
            assert proc.poll() is None and time.monotonic() < deadline, finish_dbtool(proc).stderr
            time.sleep(0.005)
    time.sleep(0.05)  # some of the rows on their way
    os.kill(proc.pid, signal.SIGKILL)
    finish_dbtool(proc)
    assert files_under(tmp) == [] and list(tmp.iterdir()) == []
    assert {p.name for p in duck_dir.iterdir()} <= {"a.duckdb", "a.duckdb.wal"}
    phone = A.encode()
    assert [p for p in files_under(tmp_path) if p.parent != duck_dir and phone in p.read_bytes()] == []


def test_a_sync_writes_no_temporary_file(chatbot_rows, db_url, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(tmp_path / "a.duckdb"),
                      env={"TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    assert list(tmp.iterdir()) == []


@pytest.fixture
def chatbot_rows(postgresql):
    """Two users, two sessions, 3 + 2 messages (committed); {name: id}."""
    pg = postgresql
    sa, sb = add_session(pg, add_user(pg, A), "sa"), add_session(pg, add_user(pg, B), "sb")
    add_messages(pg, sa, 3)
    add_messages(pg, sb, 2)
    pg.commit()
    return {"sa": sa, "sb": sb}


def test_a_duckdb_failure_mid_stream_stops_postgresql_and_copies_nothing(postgresql, monkeypatch):
    """DuckDB stops reading halfway (rows it cannot read): the copy from PostgreSQL stops too, nothing hangs."""
    s = add_session(postgresql, add_user(postgresql, A), "s-many")
    add_messages(postgresql, s, 50_000, content="x" * 400)  # 20 MB: far more than the pipe and the backlog hold
    postgresql.commit()
    duck = fresh_duck()
    # One column fewer than PostgreSQL sends. (A wrong type would not do: DuckDB reads a column as the type
    # of the table column it goes to.)
    monkeypatch.delitem(sync_mod.MESSAGE_COLUMNS, "created_at")
    with pytest.raises(AnalyticsError, match="loading DuckDB failed"):
        sync(postgresql, duck)
    assert count(duck, "message_history") == 0
    monkeypatch.undo()
    assert sync(postgresql, duck).messages == 50_000  # the PostgreSQL connection is fine


def test_a_postgresql_failure_mid_stream_copies_nothing(postgresql, monkeypatch):
    s = add_session(postgresql, add_user(postgresql, A), "s-x")
    add_messages(postgresql, s, 10)
    postgresql.commit()
    duck = fresh_duck()
    broken = sync_mod.MESSAGES_COPY.replace("m.id <= %(upto)s", "m.id <= %(upto)s AND 1 / (m.id - %(upto)s) > 0")
    monkeypatch.setattr(sync_mod, "MESSAGES_COPY", broken)  # division by zero at the last row
    with pytest.raises(AnalyticsError, match="PostgreSQL failed.*division by zero"):
        sync(postgresql, duck)
    assert count(duck, "message_history") == 0
    monkeypatch.undo()
    assert sync(postgresql, duck).messages == 10


# --- item 18: deletions reach DuckDB -------------------------------------------------------------

def ids(duck, table: str) -> list:
    key = "session_id" if table == "conversation_context" else "id"
    return [r[0] for r in duck.execute(f"SELECT {key} FROM {table} ORDER BY 1").fetchall()]  # test constants


def test_rows_deleted_in_postgresql_leave_duckdb(postgresql, chatbot_rows):
    pg = postgresql
    duck = fresh_duck()
    sync(pg, duck)
    msg_ids = [r[0] for r in pg.execute("SELECT id FROM chatbot.messages ORDER BY id").fetchall()]
    rng = np.random.default_rng(1)
    add_embeddings(duck, [{"id": i, "session_id": "sa", "phone_number": A, "content": "c",
                           "embedding": rng.standard_normal(384), "model_name": "m"} for i in msg_ids])
    # Not through erase-user: a plain DELETE of one message, and of a whole session (cascade).
    pg.execute("DELETE FROM chatbot.messages WHERE id = %s", (msg_ids[0],))
    pg.execute("DELETE FROM chatbot.sessions WHERE id = %s", (chatbot_rows["sb"],))
    pg.commit()
    out = sync(pg, duck)
    left = [r[0] for r in pg.execute("SELECT id FROM chatbot.messages ORDER BY id").fetchall()]
    pg.rollback()
    assert left == msg_ids[1:3]
    assert ids(duck, "message_history") == left
    assert ids(duck, "message_embeddings") == left
    assert ids(duck, "conversation_context") == ["sa"]
    assert out.removed == 3 + 1 + 3  # messages, sessions, embeddings
    assert duck.execute("SELECT count(*) FROM message_history WHERE phone_number = ?", [B]).fetchall() == [(0,)]
    again = sync(pg, duck)
    assert (again.messages, again.sessions, again.removed) == (0, 0, 0)


def test_an_interrupted_deletion_removes_nothing_and_the_next_run_does(postgresql, chatbot_rows):
    pg = postgresql
    duck = fresh_duck()
    sync(pg, duck)
    pg.execute("DELETE FROM chatbot.sessions WHERE id = %s", (chatbot_rows["sb"],))
    pg.commit()

    def stop(name: str) -> None:
        if name == "deletions":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(pg, duck, on_step=stop)
    assert (count(duck, "message_history"), count(duck, "conversation_context")) == (5, 2)
    assert sync(pg, duck).removed == 3
    assert (count(duck, "message_history"), count(duck, "conversation_context")) == (3, 1)


def test_embeddings_of_messages_not_synced_yet_are_kept(postgresql, chatbot_rows, db_url):
    pg = postgresql
    duck = fresh_duck()
    sync(pg, duck)
    top = pg.execute("SELECT max(id) FROM chatbot.messages").fetchone()[0]
    pg.rollback()
    rng = np.random.default_rng(2)
    add_embeddings(duck, [{"id": top + 1000, "session_id": "sa", "phone_number": A, "content": "later",
                           "embedding": rng.standard_normal(384), "model_name": "m"}])
    assert sync(pg, duck).removed == 0
    assert ids(duck, "message_embeddings") == [top + 1000]


def test_cli_sync_says_what_it_removed(postgresql, chatbot_rows, db_url, tmp_path):
    path = tmp_path / "a.duckdb"
    assert run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(path)).returncode == 0
    postgresql.execute("DELETE FROM chatbot.users WHERE phone_number = %s", (B,))
    postgresql.commit()
    done = run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(path))
    assert done.returncode == 0, done.stderr
    assert "3 row(s) removed (gone from PostgreSQL)" in done.stderr  # 2 messages, 1 session
    with duckdb.connect(str(path), read_only=True) as duck:
        assert duck.execute("SELECT DISTINCT phone_number FROM message_history").fetchall() == [(A,)]


# --- item 24: sync refuses a missing file unless --create ----------------------------------------

def test_sync_refuses_a_missing_file_unless_create(chatbot_rows, db_url, tmp_path):
    typo = tmp_path / "analytcs.duckdb"
    line = one_line_error(run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(typo)), 2)
    assert str(typo) in line and "analytics init" in line and "--create" in line
    assert list(tmp_path.iterdir()) == []
    done = run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(typo))
    assert done.returncode == 0, done.stderr
    assert "5 message(s)" in done.stderr


def test_sync_after_init_needs_no_create(chatbot_rows, db_url, tmp_path):
    path = tmp_path / "a.duckdb"
    assert run_dbtool("analytics", "init", "--path", str(path)).returncode == 0
    done = run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(path))
    assert done.returncode == 0, done.stderr


def test_sync_refuses_the_missing_default_file(chatbot_rows, db_url, tmp_path):
    root = copy_project(tmp_path / "checkout")
    line = one_line_error(run_dbtool("analytics", "sync", "--database-url", db_url,
                                     env={"DBTOOL_ROOT": str(root)}), 2)
    assert "analytics.duckdb" in line and "analytics init" in line
    assert not (root / "var").exists()


# --- item 8: erase-user reaches the default analytics file ---------------------------------------

@pytest.fixture
def checkout(postgresql, chatbot_rows, db_url, tmp_path):
    """A checkout whose default analytics file (var/analytics.duckdb) holds both users' rows."""
    root = copy_project(tmp_path / "checkout")
    path = root / "var" / "analytics.duckdb"
    init(path)
    with duckdb.connect(str(path)) as duck, Target(db_url, "test").connect(autocommit=True) as pg:
        sync(pg, duck)
    return root, path


def erase(db_url: str, root: Path, *args: str):
    return run_dbtool("erase-user", "--phone", A, "--yes", "--database-url", db_url, *args,
                      env={"DBTOOL_ROOT": str(root)})


def phones(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as duck:
        return [r[0] for r in duck.execute("SELECT DISTINCT phone_number FROM message_history ORDER BY 1").fetchall()]


def pg_users(pg) -> list[str]:
    found = [r[0] for r in pg.execute("SELECT phone_number FROM chatbot.users ORDER BY 1").fetchall()]
    pg.rollback()
    return found


def test_erase_user_reaches_the_default_analytics_file(postgresql, db_url, checkout):
    root, path = checkout
    done = erase(db_url, root)
    assert done.returncode == 0, done.stderr
    erased = {line.split()[0]: int(line.split()[1]) for line in done.stdout.splitlines()}
    assert erased["duckdb.message_history"] == 3 and erased["chatbot.messages"] == 3
    assert str(path) in done.stderr and "PostgreSQL" in done.stderr  # counts per store
    assert phones(path) == [B] and pg_users(postgresql) == [B]


def test_erase_user_fails_when_the_analytics_file_is_locked(postgresql, db_url, checkout):
    root, path = checkout
    with duckdb.connect(str(path)):  # another process holding the file
        line = one_line_error(erase(db_url, root), 1)
    assert str(path) in line
    assert pg_users(postgresql) == [A, B]  # nothing erased anywhere
    assert phones(path) == [A, B]


def test_erase_user_fails_when_the_analytics_file_is_corrupt(postgresql, db_url, checkout):
    root, path = checkout
    path.write_bytes(b"\0garbage" * 1000)
    line = one_line_error(erase(db_url, root), 1)
    assert str(path) in line
    assert pg_users(postgresql) == [A, B]


def test_erase_user_no_duckdb_skips_it_and_says_so(postgresql, db_url, checkout):
    root, path = checkout
    done = erase(db_url, root, "--no-duckdb")
    assert done.returncode == 0, done.stderr
    assert "--no-duckdb" in done.stderr and "not erased" in done.stderr
    assert "duckdb." not in done.stdout
    assert phones(path) == [A, B] and pg_users(postgresql) == [B]


def test_erase_user_without_an_analytics_file_says_so_and_creates_none(postgresql, db_url, chatbot_rows, tmp_path):
    root = copy_project(tmp_path / "checkout")
    done = erase(db_url, root)
    assert done.returncode == 0, done.stderr
    assert "no DuckDB analytics file" in done.stderr
    assert not (root / "var").exists()
    assert pg_users(postgresql) == [B]


def test_erase_user_duckdb_and_no_duckdb_contradict(db_url, tmp_path):
    path = tmp_path / "a.duckdb"
    init(path)
    line = one_line_error(run_dbtool("erase-user", "--phone", A, "--yes", "--database-url", db_url,
                                     "--duckdb", str(path), "--no-duckdb"), 2)
    assert "--no-duckdb" in line


# --- the same kinds, elsewhere ---------------------------------------------------------------------

def test_a_new_analytics_file_is_private(chatbot_rows, db_url, tmp_path):
    made = tmp_path / "init.duckdb"
    assert run_dbtool("analytics", "init", "--path", str(made)).returncode == 0
    synced = tmp_path / "sync.duckdb"
    assert run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(synced)).returncode == 0
    assert [oct(p.stat().st_mode & 0o777) for p in (made, synced)] == ["0o600", "0o600"]


def test_an_analytics_file_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(run_dbtool("analytics", "init", "--path", str(blocker / "sub" / "x.duckdb")), 1)
    assert "cannot create DuckDB file" in line
