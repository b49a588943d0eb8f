"""dbtool analytics sync: incremental, exact, and all-or-nothing when interrupted."""

from __future__ import annotations

import json

import duckdb
import psycopg
import pytest

from analytics_helpers import add_messages, add_session, add_user, count, fresh_duck
from dbtool.analytics.db import AnalyticsError
from dbtool.analytics.sync import sync
from helpers import run_dbtool


class Interrupt(Exception):
    pass


def interrupt_at(step_name: str):
    def hook(name: str) -> None:
        if name == step_name:
            raise Interrupt(name)
    return hook


@pytest.fixture
def chatbot(postgresql):
    """2 users, 3 sessions, 10 messages (committed)."""
    pg = postgresql
    u1, u2 = add_user(pg, "+5511900000001"), add_user(pg, "+5511900000002")
    s1 = add_session(pg, u1, "sess-1", state="QUALIFICATION", score=65, profile='{"budget": 80000}')
    s2 = add_session(pg, u1, "sess-2")
    s3 = add_session(pg, u2, "sess-3")
    add_messages(pg, s1, 3, intent="ask_price", entities='{"brand": "Fiat"}')
    add_messages(pg, s1, 1, intent="ask_price", entities='{"brand": "VW", "year": 2020}')
    add_messages(pg, s1, 2, role="assistant")
    add_messages(pg, s2, 2, intent="greeting")
    add_messages(pg, s3, 2)
    pg.commit()
    return pg, {"s1": s1, "s2": s2, "s3": s3}


def state(duck) -> tuple:
    return (count(duck, "message_history"), count(duck, "conversation_context"),
            duck.execute("SELECT list(last_id ORDER BY source) FROM analytics_sync_state").fetchall()[0][0])


def test_first_run_copies_everything_exactly(chatbot):
    pg, _ = chatbot
    duck = fresh_duck()
    out = sync(pg, duck)
    assert (out.messages, out.sessions) == (10, 3)
    assert count(duck, "message_history") == 10
    by_phone = dict(duck.execute("SELECT phone_number, count(*) FROM message_history GROUP BY ALL").fetchall())
    assert by_phone == {"+5511900000001": 8, "+5511900000002": 2}
    ctx = duck.execute("SELECT phone_number, turn_id, summary, key_entities::VARCHAR, user_profile->>'budget',"
                       " state, qualification_score::VARCHAR FROM conversation_context"
                       " WHERE session_id = 'sess-1'").fetchall()[0]
    assert ctx[:3] + ctx[4:] == ("+5511900000001", 0, "6 messages (4 from the user); intents: ask_price",
                                 "80000", "QUALIFICATION", "65.00")
    assert json.loads(ctx[3]) == {"brand": "VW", "year": 2020}  # the latest value of each entity key
    pg_ids = [r[0] for r in pg.execute("SELECT id FROM chatbot.messages ORDER BY id").fetchall()]
    pg.rollback()
    assert [r[0] for r in duck.execute("SELECT id FROM message_history ORDER BY id").fetchall()] == pg_ids


def test_text_round_trips_through_csv(postgresql):
    pg = postgresql
    s = add_session(pg, add_user(pg, "+5511900000009"), "sess-x")
    tricky = ["", 'quotes "inside", commas', "two\nlines\r\nand more", "unicode: ação 🚗", "\\N", "NULL"]
    for text in tricky:
        pg.execute("INSERT INTO chatbot.messages (session_id, role, content) VALUES (%s, 'user', %s)", (s, text))
    pg.commit()
    duck = fresh_duck()
    sync(pg, duck)
    got = [r[0] for r in duck.execute("SELECT content FROM message_history ORDER BY id").fetchall()]
    assert got == tricky
    nulls = duck.execute("SELECT count(*) FROM message_history WHERE intent IS NULL AND message_id IS NULL"
                         " AND confidence IS NULL").fetchall()[0][0]
    assert nulls == len(tricky)


def test_second_run_copies_only_what_is_new(chatbot):
    pg, ids = chatbot
    duck = fresh_duck()
    sync(pg, duck)
    again = sync(pg, duck)
    assert (again.messages, again.sessions) == (0, 0)
    add_messages(pg, ids["s3"], 5, intent="schedule_test_drive")
    pg.execute("UPDATE chatbot.sessions SET state = 'DISCOVERY' WHERE id = %s", (ids["s2"],))
    pg.commit()
    third = sync(pg, duck)
    assert (third.messages, third.sessions) == (5, 2)  # sess-3 (new messages) and sess-2 (updated)
    assert count(duck, "message_history") == 15
    assert duck.execute("SELECT state FROM conversation_context WHERE session_id = 'sess-2'").fetchall() == [
        ("DISCOVERY",)]
    assert duck.execute("SELECT summary FROM conversation_context WHERE session_id = 'sess-3'").fetchall() == [
        ("7 messages (7 from the user); intents: schedule_test_drive",)]


@pytest.mark.parametrize("step", ["messages", "sessions", "watermark"])
def test_interrupted_run_loses_and_duplicates_nothing(chatbot, step):
    pg, ids = chatbot
    duck = fresh_duck()
    sync(pg, duck)
    before = state(duck)
    add_messages(pg, ids["s1"], 4, intent="ask_financing")
    pg.commit()
    with pytest.raises(Interrupt, match=f"^{step}$"):
        sync(pg, duck, on_step=interrupt_at(step))
    assert state(duck) == before  # the half-done run left nothing
    rerun = sync(pg, duck)
    assert (rerun.messages, rerun.sessions) == (4, 1)
    assert count(duck, "message_history") == 14
    assert duck.execute("SELECT count(DISTINCT id) FROM message_history").fetchall() == [(14,)]
    assert sync(pg, duck).messages == 0


def test_waits_for_a_writer_open_at_the_snapshot(chatbot, db_url):
    """An id taken by a transaction still open must not be skipped when a later id commits first."""
    pg, ids = chatbot
    duck = fresh_duck()
    sync(pg, duck)
    with psycopg.connect(db_url) as slow, psycopg.connect(db_url, autocommit=True) as fast:
        add_messages(slow, ids["s2"], 1, content="slow")  # takes the lower id, not committed yet
        add_messages(fast, ids["s2"], 1, content="fast")
        with pytest.raises(AnalyticsError, match="stayed open"):
            sync(pg, duck, wait=0.3)
        assert count(duck, "message_history") == 10  # nothing copied, not even the committed row
        slow.commit()
    out = sync(pg, duck)
    assert out.messages == 2
    assert sorted(r[0] for r in duck.execute(
        "SELECT content FROM message_history WHERE content IN ('slow 1', 'fast 1')").fetchall()) == ["fast 1", "slow 1"]


def test_cli_sync_then_summary(chatbot, db_url, tmp_path):
    path = tmp_path / "cli.duckdb"
    out = run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(path))
    assert out.returncode == 0, out.stderr
    assert "10 message(s) and 3 session(s) copied" in out.stderr
    again = run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(path))
    assert "0 message(s) and 0 session(s) copied" in again.stderr
    with duckdb.connect(str(path), read_only=True) as duck:
        assert count(duck, "message_history") == 10


def test_cli_sync_cannot_connect(tmp_path):
    out = run_dbtool("analytics", "sync", "--create", "--database-url", "postgresql://nobody@/nodb?host=/nonexistent",
                     "--path", str(tmp_path / "x.duckdb"))
    assert out.returncode == 3 and out.stderr.count("\n") <= 2 and "Traceback" not in out.stderr


def test_a_row_whose_nextval_ran_before_its_xid_is_picked_up_by_the_next_run(chatbot, db_url):
    """nextval() takes no xid: the snapshot's xip cannot show that writer, so the horizon passes it by."""
    pg, ids = chatbot
    duck = fresh_duck()
    sync(pg, duck)
    with psycopg.connect(db_url) as slow, psycopg.connect(db_url, autocommit=True) as fast:
        early = slow.execute("SELECT nextval(pg_get_serial_sequence('chatbot.messages', 'id'))").fetchone()[0]
        assert slow.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()[0] is None
        add_messages(fast, ids["s2"], 1, content="fast")      # a higher id, committed first
        first = sync(pg, duck, wait=0.3)                      # nothing to wait for: slow has no xid yet
        assert first.messages == 1 and first.last_message_id > early
        slow.execute("INSERT INTO chatbot.messages (id, session_id, role, content) VALUES (%s, %s, 'user', 'slow')",
                     (early, ids["s2"]))
        slow.commit()
    late = sync(pg, duck)
    assert late.messages == 1                                 # re-read below the watermark, counted once
    assert duck.execute("SELECT id FROM message_history WHERE content = 'slow'").fetchall() == [(early,)]
    assert sync(pg, duck).messages == 0
    assert count(duck, "message_history") == 12


def test_cli_sync_of_an_unmigrated_database_is_one_line(empty_url, tmp_path):
    out = run_dbtool("analytics", "sync", "--create", "--database-url", empty_url, "--path", str(tmp_path / "x.duckdb"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: ") and "chatbot.messages" in last and "does not exist" in last
