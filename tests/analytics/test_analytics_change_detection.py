"""`analytics sync` with nothing new costs one query and writes nothing; any change after it is still copied
(issue 15). The baseline (analytics_sync_baseline) is the last run's snapshot: rows whose xmin it cannot see,
or other row counts, are changes (dbtool.analytics.sync, "Change detection")."""

from __future__ import annotations

import os
import tempfile

import duckdb
import psycopg
import pytest
from psycopg import pq

from analytics_helpers import add_messages, add_session, add_user, count, fresh_duck
from dbtool.analytics.erase import erase_phone
from dbtool.analytics.sync import sync
from dbtool.lock_wait import TableLockTimeout
from helpers import run_dbtool

A, B = "+5511933333333", "+5511944444444"


@pytest.fixture
def chat(postgresql):
    pg = postgresql
    a, b = add_user(pg, A), add_user(pg, B)
    sa, sb = add_session(pg, a, "sa"), add_session(pg, b, "sb")
    add_messages(pg, sa, 4, intent="ask_price", entities='{"brand": "Fiat"}')
    add_messages(pg, sb, 3)
    pg.commit()
    return pg, {"a": a, "b": b, "sa": sa, "sb": sb}


def dump(duck: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Every row of every DuckDB table, the bookkeeping included."""
    tables = [r[0] for r in duck.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
                                         " ORDER BY 1").fetchall()]
    return {t: sorted(map(repr, duck.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}


class Statements:
    """What a connection sends PostgreSQL, from libpq's own trace of the real connection."""

    def __init__(self, pg: psycopg.Connection):
        self.pg, self.file = pg, tempfile.TemporaryFile()

    def __enter__(self) -> "Statements":
        self.pg.pgconn.trace(self.file.fileno())
        self.pg.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        return self

    def __exit__(self, *exc) -> None:
        self.pg.pgconn.untrace()
        self.file.seek(0)
        self.lines = self.file.read().decode("utf-8", "replace").splitlines()
        self.file.close()

    @property
    def sent(self) -> list[str]:
        """Every statement sent (a simple Query or an extended-protocol Parse), transaction control excepted."""
        messages: list[str] = []
        for line in self.lines:  # a message's text may span lines: those that start no message continue it
            if line.startswith(("F\t", "B\t")) or not messages:
                messages.append(line)
            else:
                messages[-1] += "\n" + line
        out = []
        for message in messages:
            parts = message.split("\t", 3)
            if len(parts) == 4 and parts[0] == "F" and parts[2] in ("Query", "Parse"):
                text = parts[3].strip()
                if text.strip('"') not in ("BEGIN", "COMMIT", "ROLLBACK"):
                    out.append(text)
        return out


def test_nothing_new_is_one_query_and_changes_nothing(chat):
    pg, _ = chat
    duck = fresh_duck()
    assert sync(pg, duck).mode == "first"
    before = dump(duck)
    with Statements(pg) as trace:
        out = sync(pg, duck)
    assert (out.mode, out.messages, out.sessions, out.updated, out.removed) == ("unchanged", 0, 0, 0, 0)
    assert len(trace.sent) == 1, trace.sent
    assert "pg_current_snapshot()" in trace.sent[0] and "lock_timeout" in trace.sent[0]
    assert dump(duck) == before  # not even a watermark written


def test_other_transactions_are_no_change_and_the_check_is_still_one_query(chat, db_url):
    """Transactions elsewhere (another table, another database's xids) move the snapshot: the query then reads
    the three tables' xmins and counts, still in one statement, and finds nothing."""
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("CREATE TABLE public.unrelated (x int)")
        other.execute("INSERT INTO public.unrelated VALUES (1)")
        with other.transaction(force_rollback=True):
            other.execute("INSERT INTO chatbot.messages (session_id, role, content) VALUES (%s, 'user', 'undone')",
                          (ids["sb"],))  # rolled back
        other.execute("SELECT id FROM chatbot.sessions WHERE id = %s FOR UPDATE", (ids["sa"],))  # a row lock
        other.execute("VACUUM (FREEZE) chatbot.messages")  # frozen rows keep their xmin
    before = dump(duck)
    with Statements(pg) as trace:
        out = sync(pg, duck)
    assert out.mode == "unchanged" and len(trace.sent) == 1 and dump(duck) == before


@pytest.mark.parametrize("change", ["insert", "update", "noop update", "delete", "consent", "phone", "session",
                                    "session key", "truncate"])
def test_a_change_after_a_nothing_new_run_is_copied(chat, change):
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    assert sync(pg, duck).mode == "unchanged"
    first = pg.execute("SELECT min(id) FROM chatbot.messages WHERE session_id = %s", (ids["sa"],)).fetchone()[0]
    statement = {
        "insert": ("INSERT INTO chatbot.messages (session_id, role, content) VALUES (%s, 'user', 'new')", (ids["sb"],)),
        "update": ("UPDATE chatbot.messages SET content = 'edited' WHERE id = %s", (first,)),
        "noop update": ("UPDATE chatbot.messages SET content = content WHERE id = %s", (first,)),
        "delete": ("DELETE FROM chatbot.messages WHERE id = %s", (first,)),
        "consent": ("UPDATE chatbot.users SET consent = false WHERE id = %s", (ids["b"],)),
        "phone": ("UPDATE chatbot.users SET phone_number = '+5511900009999' WHERE id = %s", (ids["a"],)),
        "session": ("UPDATE chatbot.sessions SET state = 'CLOSED' WHERE id = %s", (ids["sb"],)),
        "session key": ("UPDATE chatbot.sessions SET session_id = 'sb-renamed' WHERE id = %s", (ids["sb"],)),
        "truncate": ("TRUNCATE chatbot.messages CASCADE", ()),
    }[change]
    pg.execute(*statement)
    pg.commit()
    out = sync(pg, duck)
    assert out.mode == "changes", out  # compared only what changed since the last run
    fresh = fresh_duck()
    sync(pg, fresh)  # what a first copy of PostgreSQL makes now
    for table in ("message_history", "conversation_context"):
        assert dump(duck)[table] == dump(fresh)[table], (change, table)
    if change == "noop update":
        assert (out.updated, out.messages, out.removed) == (0, 0, 0)
    assert sync(pg, duck).mode == "unchanged"  # and then nothing more


def test_a_writer_in_flight_during_a_nothing_new_check_is_copied_once_it_commits(chat, db_url):
    """Its row is not visible to the check (nothing changed yet); committed, its xid is one the baseline's
    snapshot cannot see."""
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    with psycopg.connect(db_url) as slow:
        slow.execute("INSERT INTO chatbot.messages (session_id, role, content) VALUES (%s, 'user', 'late')",
                     (ids["sa"],))
        assert sync(pg, duck).mode == "unchanged"
        slow.commit()
    out = sync(pg, duck)
    assert (out.mode, out.messages) == ("changes", 1)
    assert sync(pg, duck).mode == "unchanged"


def set_baseline(duck, **values) -> None:
    for column, value in values.items():
        duck.execute(f"UPDATE analytics_sync_baseline SET {column} = ?", [value])  # test constants


@pytest.mark.parametrize("why,values", [
    ("another server, database or tables", {"server": "1.5 1 2 3 4"}),
    ("the last sync is too many transactions ago", {"snapshot": "4000000000:4000000000:"}),
])
def test_a_baseline_of_another_server_or_too_old_compares_every_row(chat, why, values):
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    set_baseline(duck, **values)
    duck.execute("UPDATE message_history SET content = 'tampered' WHERE id = (SELECT min(id) FROM message_history)")
    out = sync(pg, duck)
    assert (out.mode, out.why, out.updated) == ("full", why, 1)  # every digest compared: the tampered row too
    assert sync(pg, duck).mode == "unchanged"


def test_an_older_format_or_no_baseline_compares_every_row(chat):
    pg, _ = chat
    duck = fresh_duck()
    sync(pg, duck)
    set_baseline(duck, format=1)
    assert sync(pg, duck).mode == "full"
    duck.execute("DELETE FROM analytics_sync_baseline")
    assert sync(pg, duck).mode == "full"
    assert sync(pg, duck).mode == "unchanged"


def test_an_erasure_makes_the_next_sync_compare_every_row(chat):
    pg, _ = chat
    duck = fresh_duck()
    sync(pg, duck)
    erase_phone(duck, B)  # DuckDB only (PostgreSQL still has B): the next sync copies B back, as before
    assert count(duck, "analytics_sync_baseline") == 0
    out = sync(pg, duck)
    assert (out.mode, out.messages) == ("full", 3)


def test_the_nothing_new_query_waits_no_longer_than_the_lock_timeout(chat, db_url):
    pg, _ = chat
    duck = fresh_duck()
    sync(pg, duck)
    with psycopg.connect(db_url, application_name="ddl-job") as blocker:
        blocker.execute("LOCK TABLE chatbot.messages IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TableLockTimeout, match=r"gave up after 0\.3s.*ddl-job.*nothing copied"):
            sync(pg, duck, lock_timeout=0.3)


def test_summaries_equal_postgresqls_own_aggregates(postgresql):
    """DuckDB derives summary and key_entities from message_history; where the latest entities do not cover every
    key, PostgreSQL aggregates them. Either way the result is what jsonb_object_agg (latest value per key) and
    the counts give in PostgreSQL, text for text."""
    pg = postgresql
    user = add_user(pg, A)
    entities = ['{"a": 1}', '{"b": 1.50, "a": 2}', '{}', '[1, 2]', '"text"', 'null', '{"ç": "ação", "a": {"x": [1]}}',
                '{"a": 1e5}', '{"long key with spaces": true, "z": null}', '{"b": 0.0}']
    for s in range(30):
        session = add_session(pg, user, f"s{s}")
        for i in range(s % 5 + 1):
            pg.execute("INSERT INTO chatbot.messages (session_id, role, content, intent, entities)"
                       " VALUES (%s, %s, 'x', %s, %s::jsonb)",
                       (session, "user" if (s + i) % 2 else "assistant",
                        [None, "ask_price", "greeting", "Zeta", "ask_financing"][(s * 3 + i) % 5],
                        entities[(s * 7 + i * 3) % len(entities)]))
    pg.commit()
    duck = fresh_duck()
    sync(pg, duck)
    expected = pg.execute("""
        SELECT s.session_id,
               format('%s messages (%s from the user); intents: %s', count(m.id),
                      count(m.id) FILTER (WHERE m.role = 'user'),
                      coalesce((SELECT string_agg(i, ', ' ORDER BY i COLLATE "C") FROM (SELECT DISTINCT m3.intent
                                AS i FROM chatbot.messages m3 WHERE m3.session_id = s.id) d), 'none')),
               coalesce((SELECT jsonb_object_agg(e.key, e.value ORDER BY m2.id)
                         FROM chatbot.messages m2 CROSS JOIN LATERAL jsonb_each(m2.entities) e
                         WHERE m2.session_id = s.id AND jsonb_typeof(m2.entities) = 'object'), '{}')::text
        FROM chatbot.sessions s LEFT JOIN chatbot.messages m ON m.session_id = s.id
        GROUP BY s.id, s.session_id ORDER BY 1""").fetchall()
    pg.rollback()
    got = duck.execute("SELECT session_id, summary, key_entities::VARCHAR FROM conversation_context ORDER BY 1"
                       ).fetchall()
    assert got == [tuple(r) for r in expected]


def test_cli_says_nothing_changed(chat, db_url, tmp_path):
    path = tmp_path / "a.duckdb"
    first = run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(path))
    assert first.returncode == 0 and "first copy" in first.stderr and "rows/s" in first.stderr, first.stderr
    again = run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(path))
    assert again.returncode == 0 and "nothing changed in PostgreSQL since the last sync" in again.stderr
    assert os.path.exists(path)
