"""Issue 12, the rest of item 18: an UPDATE in PostgreSQL reaches DuckDB at the next sync.

chatbot.messages has no updated_at: the sync compares a digest of every copied column with DuckDB's
(dbtool.analytics.sync.DIGEST_FIELDS), so a redacted text, a changed phone number or new entities replace
the old values, and an embedding made from an old text is dropped. Personal data never lingers in DuckDB
after a redaction in PostgreSQL.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from analytics_helpers import add_messages, add_session, add_user, count, fresh_duck
from dbtool.analytics.embeddings import add_embeddings, search_similar
from dbtool.analytics.sync import sync
from helpers import run_dbtool

A, B = "+5511977777777", "+5511988888888"
NEW_A = "+5511911112222"
SECRET = "my CPF is 123.456.789-00 and I live at Rua das Flores 12"


def everything(duck: duckdb.DuckDBPyConnection) -> str:
    """Every value of every analytics table, as one text (to look for what must be gone)."""
    out = []
    for table in ("message_history", "conversation_context", "message_embeddings"):
        out += [repr(row) for row in duck.execute(f"SELECT * FROM {table}").fetchall()]  # test constants
    return "\n".join(out)


@pytest.fixture
def chat(postgresql):
    """A (2 sessions, 4 messages, one of them SECRET) and B (1 session, 2 messages); committed."""
    pg = postgresql
    a, b = add_user(pg, A), add_user(pg, B)
    sa1, sa2, sb = add_session(pg, a, "sa1"), add_session(pg, a, "sa2"), add_session(pg, b, "sb")
    add_messages(pg, sa1, 2, intent="ask_price", entities='{"brand": "Fiat"}')
    secret_id = pg.execute("INSERT INTO chatbot.messages (session_id, role, content, entities) VALUES"
                           " (%s, 'user', %s, '{\"cpf\": \"123.456.789-00\"}') RETURNING id",
                           (sa1, SECRET)).fetchone()[0]
    add_messages(pg, sa2, 1)
    add_messages(pg, sb, 2)
    pg.commit()
    return pg, {"a": a, "b": b, "sa1": sa1, "sa2": sa2, "sb": sb, "secret": secret_id}


def embed_all(pg, duck) -> None:
    """An embedding for every synced message, made from its text (as the application would)."""
    rows = duck.execute("SELECT id, message_id, session_id, phone_number, content FROM message_history").fetchall()
    rng = np.random.default_rng(3)
    add_embeddings(duck, [{"id": i, "message_id": mid, "session_id": s, "phone_number": p, "content": c,
                           "embedding": rng.standard_normal(384), "model_name": "m"} for i, mid, s, p, c in rows])


def test_a_redacted_text_and_a_new_phone_number_replace_the_old_values(chat):
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    embed_all(pg, duck)
    secret_vector = duck.execute("SELECT embedding FROM message_embeddings WHERE id = ?", [ids["secret"]]
                                 ).fetchall()[0][0]
    assert search_similar(duck, secret_vector, k=1)[0].id == ids["secret"]  # the search matrix is loaded
    assert SECRET in everything(duck) and A in everything(duck)

    pg.execute("UPDATE chatbot.messages SET content = '[redacted]', entities = '{}' WHERE id = %s", (ids["secret"],))
    pg.execute("UPDATE chatbot.users SET phone_number = %s WHERE id = %s", (NEW_A, ids["a"]))
    pg.commit()
    out = sync(pg, duck)

    assert (out.messages, out.updated, out.embeddings_dropped) == (0, 4, 1)  # A's 4 messages; 1 text changed
    assert out.sessions == 2  # sa1 (new phone, new entities) and sa2 (new phone)
    dump = everything(duck)
    assert SECRET not in dump and "123.456.789-00" not in dump and A not in dump
    assert duck.execute("SELECT content FROM message_history WHERE id = ?", [ids["secret"]]).fetchall() == [
        ("[redacted]",)]
    assert duck.execute("SELECT DISTINCT phone_number FROM message_history WHERE session_id LIKE 'sa%'"
                        ).fetchall() == [(NEW_A,)]
    assert sorted(duck.execute("SELECT session_id, phone_number FROM conversation_context").fetchall()) == [
        ("sa1", NEW_A), ("sa2", NEW_A), ("sb", B)]
    assert duck.execute("SELECT key_entities::VARCHAR FROM conversation_context WHERE session_id = 'sa1'"
                        ).fetchall() == [('{"brand": "Fiat"}',)]
    # The embedding made from the old text is gone (from the file and from the search matrix); the others
    # stay, with the new phone number.
    embedded = dict(duck.execute("SELECT id, phone_number FROM message_embeddings").fetchall())
    assert ids["secret"] not in embedded and len(embedded) == 5
    assert set(embedded.values()) == {NEW_A, B}
    hits = search_similar(duck, secret_vector, k=10)
    assert ids["secret"] not in {h.id for h in hits} and A not in {h.phone_number for h in hits}
    assert count(duck, "message_history") == 6

    again = sync(pg, duck)  # converged: nothing more to do
    assert (again.messages, again.sessions, again.updated, again.removed) == (0, 0, 0, 0)


def test_withdrawn_consent_removes_the_users_rows_and_embeddings(chat):
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    embed_all(pg, duck)
    pg.execute("UPDATE chatbot.users SET consent = false WHERE id = %s", (ids["a"],))
    pg.commit()
    out = sync(pg, duck)
    assert out.removed == 4 + 4 + 2  # messages, embeddings, sessions
    assert A not in everything(duck) and SECRET not in everything(duck)
    assert count(duck, "message_embeddings") == 2


def test_every_changed_column_is_seen_and_nothing_else_is_rewritten(chat):
    pg, ids = chat
    duck = fresh_duck()
    sync(pg, duck)
    changes = [
        ("message_id", "'wamid.X1'"), ("role", "'assistant'"), ("intent", "'greeting'"), ("sentiment", "'negative'"),
        ("confidence", "0.7"), ("entities", "'{\"brand\": \"VW\"}'"), ("response_time_ms", "1234"),
        ("created_at", "created_at - interval '1 microsecond'"), ("content", "content || ' '"),
    ]
    msg = pg.execute("SELECT min(id) FROM chatbot.messages WHERE session_id = %s", (ids["sb"],)).fetchone()[0]
    for column, value in changes:
        pg.execute(f"UPDATE chatbot.messages SET {column} = {value} WHERE id = %s", (msg,))  # test constants
        pg.commit()
        out = sync(pg, duck)
        assert (out.updated, out.messages) == (1, 0), column
    pg.execute("UPDATE chatbot.messages SET session_id = %s WHERE id = %s", (ids["sa2"], msg))  # moved
    pg.commit()
    out = sync(pg, duck)
    assert out.updated == 1 and out.sessions == 2  # the session it left and the one it joined
    assert duck.execute("SELECT session_id, phone_number FROM message_history WHERE id = ?", [msg]).fetchall() == [
        ("sa2", A)]
    summaries = dict(duck.execute("SELECT session_id, summary FROM conversation_context").fetchall())
    assert summaries["sb"].startswith("1 messages") and summaries["sa2"].startswith("2 messages")
    assert sync(pg, duck).updated == 0


TRICKY_TEXT = ["", 'quotes "inside", commas', "two\nlines\r\nand more", "unicode: ação 🚗 👨‍👩‍👧", "\\N", "NULL",
               "1:2:3", "-", "tab\there", "x" * 10_000]
TRICKY_JSON = ['{}', '{"a": 1.50}', '{"a": 1e5, "b": [1, "2", null, true]}', '{"ç": "ação\\u00e7\\n"}',
               '{"nested": {"deep": [{"x": -0.0}]}}', '[]', '"just a string"', 'null']
CONFIDENCES = [None, 0, 1, 0.1, 1 / 3, 1e-5, 2.5e-7, 0.123456789012345678, 5e-324]


def test_values_of_every_kind_round_trip_without_being_rewritten(postgresql):
    """The digests of both sides agree on every value the columns can hold: a second sync rewrites nothing."""
    pg = postgresql
    s = add_session(pg, add_user(pg, A), "s-tricky")
    for i, text in enumerate(TRICKY_TEXT):
        pg.execute(
            "INSERT INTO chatbot.messages (message_id, session_id, role, content, intent, sentiment, confidence,"
            " entities, response_time_ms, created_at) VALUES (%s, %s, 'user', %s, %s, %s, %s, %s::jsonb, %s,"
            " %s::timestamptz)",
            (f"wamid.{i}" if i % 2 else None, s, text, "ask_price" if i % 3 else None,
             "neutral" if i % 2 else None, CONFIDENCES[i % len(CONFIDENCES)], TRICKY_JSON[i % len(TRICKY_JSON)],
             i * 100 if i % 2 else None,
             ["2024-02-29 23:59:59.999999+00", "1970-01-01 00:00:00+00", "1900-06-30 12:00:00.5-03",
              "2200-01-01 00:00:00.000001+00", "infinity", "-infinity"][i % 6]))
    pg.commit()
    duck = fresh_duck()
    first = sync(pg, duck)
    assert first.messages == len(TRICKY_TEXT)
    again = sync(pg, duck)
    assert (again.messages, again.updated, again.sessions, again.removed) == (0, 0, 0, 0)
    assert [r[0] for r in duck.execute("SELECT content FROM message_history ORDER BY id").fetchall()] == TRICKY_TEXT


def test_a_session_update_older_than_the_watermark_still_arrives(chat):
    """updated_at is the writer's transaction start: a late commit can carry one older than the watermark
    minus the overlap. The key set's updated_at differs from DuckDB's all the same."""
    pg, ids = chat
    add_messages(pg, ids["sa2"], 1100)  # sb's messages are not among the newest 1,000 ids (re-read by older syncs)
    pg.execute("SET session_replication_role = replica")  # no trigger: updated_at keeps the value given
    pg.execute("UPDATE chatbot.users SET updated_at = now() - interval '5 days'")
    pg.execute("UPDATE chatbot.sessions SET updated_at = now() - interval '2 days'")  # the watermark
    pg.commit()
    duck = fresh_duck()
    sync(pg, duck)
    pg.execute("UPDATE chatbot.sessions SET state = 'CLOSED', updated_at = now() - interval '3 days' WHERE id = %s",
               (ids["sb"],))
    pg.execute("RESET session_replication_role")
    pg.commit()
    out = sync(pg, duck)
    assert out.sessions == 1
    assert duck.execute("SELECT state FROM conversation_context WHERE session_id = 'sb'").fetchall() == [("CLOSED",)]


def test_cli_sync_says_what_it_rewrote(chat, db_url, tmp_path):
    pg, ids = chat
    path = tmp_path / "a.duckdb"
    assert run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(path)).returncode == 0
    pg.execute("UPDATE chatbot.messages SET content = '[redacted]' WHERE id = %s", (ids["secret"],))
    pg.commit()
    done = run_dbtool("analytics", "sync", "--database-url", db_url, "--path", str(path))
    assert done.returncode == 0, done.stderr
    assert "0 message(s) and 0 session(s) copied, 1 message(s) rewritten (changed in PostgreSQL)" in done.stderr
    with duckdb.connect(str(path), read_only=True) as duck:
        assert SECRET not in everything(duck)
