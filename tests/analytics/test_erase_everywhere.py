"""A chatbot user's erasure removes their rows in PostgreSQL and DuckDB, and nobody else's."""

from __future__ import annotations

import duckdb

from analytics_helpers import add_messages, add_session, add_user, count
from dbtool.analytics.db import init
from dbtool.analytics.sync import sync
from dbtool.config import Target
from helpers import run_dbtool

A, B = "+5511933333333", "+5511944444444"


def synced(postgresql, db_url, tmp_path, users: dict[str, int]):
    """Users (phone -> messages) in PostgreSQL, synced into a new DuckDB file; the file's path."""
    for i, (phone, n) in enumerate(users.items()):
        add_messages(postgresql, add_session(postgresql, add_user(postgresql, phone), f"s{i}"), n)
    postgresql.commit()
    path = tmp_path / "a.duckdb"
    init(path)
    with duckdb.connect(str(path)) as duck, Target(db_url, "test").connect(autocommit=True) as pg:
        sync(pg, duck)
        assert count(duck, "message_history") == sum(users.values())
    return path


def test_erase_user_cli_erases_postgresql_and_duckdb(postgresql, db_url, tmp_path):
    path = synced(postgresql, db_url, tmp_path, {A: 3, B: 3})

    out = run_dbtool("erase-user", "--phone", A, "--duckdb", str(path), "--yes", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "chatbot.messages" in out.stdout and "duckdb.message_history" in out.stdout
    erased = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()}
    assert erased["duckdb.message_history"] == 3 and erased["chatbot.users"] == 1

    with duckdb.connect(str(path)) as duck:
        assert duck.execute("SELECT DISTINCT phone_number FROM message_history").fetchall() == [(B,)]
    phones = [r[0] for r in postgresql.execute("SELECT phone_number FROM chatbot.users").fetchall()]
    assert phones == [B]
    assert postgresql.execute("SELECT count(*) FROM chatbot.messages").fetchone()[0] == 3


def test_erase_user_needs_yes(db_url):
    out = run_dbtool("erase-user", "--phone", A, "--database-url", db_url)
    assert out.returncode == 2 and "add --yes" in out.stderr


def test_erase_user_refuses_a_missing_duckdb_file_and_creates_none(postgresql, db_url, tmp_path):
    add_user(postgresql, A)
    postgresql.commit()
    missing = tmp_path / "missing.duckdb"
    out = run_dbtool("erase-user", "--phone", A, "--duckdb", str(missing), "--yes", "--database-url", db_url)
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr
    assert not missing.exists()
    assert postgresql.execute("SELECT count(*) FROM chatbot.users").fetchone()[0] == 1


def test_erase_user_with_an_uninitialised_duckdb_file_erases_nothing(postgresql, db_url, tmp_path):
    add_messages(postgresql, add_session(postgresql, add_user(postgresql, A), "sa"), 2)
    postgresql.commit()
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    out = run_dbtool("erase-user", "--phone", A, "--duckdb", str(bare), "--yes", "--database-url", db_url)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "nothing erased" in out.stderr and out.stderr.strip().splitlines()[-1].startswith("dbtool: ")
    # The DuckDB failure came inside the PostgreSQL transaction: the user's rows are all still there.
    assert postgresql.execute("SELECT count(*) FROM chatbot.messages").fetchone()[0] == 2


def test_duckdb_rows_are_erased_even_after_the_user_left_postgresql(postgresql, db_url, tmp_path):
    path = synced(postgresql, db_url, tmp_path, {A: 2})
    assert run_dbtool("erase-user", "--phone", A, "--yes", "--no-duckdb", "--database-url", db_url).returncode == 0
    out = run_dbtool("erase-user", "--phone", A, "--duckdb", str(path), "--yes", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "duckdb.message_history" in out.stdout and "chatbot.users" not in out.stdout
    with duckdb.connect(str(path)) as duck:
        assert count(duck, "message_history") == 0
