"""Summaries on a known fixture give known numbers (text and JSON through the CLI too)."""

from __future__ import annotations

import json

import duckdb
import pytest

from dbtool.analytics import db, summaries
from helpers import run_dbtool

# id, session, phone, role, intent, sentiment, response_time_ms, created_at (UTC)
MESSAGES = [
    (1, "s1", "+551", "user", "ask_price", "positive", None, "2024-05-01 09:00:00+00"),
    (2, "s1", "+551", "assistant", None, None, 100, "2024-05-01 09:00:01+00"),
    (3, "s1", "+551", "user", "ask_price", "neutral", None, "2024-05-01 09:01:00+00"),
    (4, "s1", "+551", "assistant", None, None, 200, "2024-05-01 09:01:01+00"),
    (5, "s2", "+552", "user", "schedule_test_drive", "negative", None, "2024-05-01 23:59:59+00"),
    (6, "s2", "+552", "assistant", None, None, 300, "2024-05-02 00:00:01+00"),
    (7, "s3", "+553", "user", None, "positive", None, "2024-05-02 12:00:00+00"),
    (8, "s3", "+553", "assistant", None, None, 400, "2024-05-02 12:00:02+00"),
    (9, "s3", "+553", "assistant", None, None, None, "2024-05-02 12:00:03+00"),
]
# session, phone, state, score: s4 has no user message, so it stops at "sessions"
CONTEXTS = [("s1", "+551", "RECOMMENDATION", 75), ("s2", "+552", "QUALIFICATION", 30),
            ("s3", "+553", "DISCOVERY", 0), ("s4", "+554", "GREETING", 90)]


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "s.duckdb"
    db.init(p)
    with duckdb.connect(str(p)) as conn:
        conn.executemany("INSERT INTO message_history (id, session_id, phone_number, role, content, intent,"
                         " sentiment, response_time_ms, created_at) VALUES (?, ?, ?, ?, 'text', ?, ?, ?, ?)",
                         [list(m) for m in MESSAGES])
        conn.executemany("INSERT INTO conversation_context (session_id, phone_number, state, qualification_score,"
                         " created_at, source_updated_at) VALUES (?, ?, ?, ?, now(), now())",
                         [list(c) for c in CONTEXTS])
    return p


def test_known_numbers(path):
    with duckdb.connect(str(path)) as conn:
        data = summaries.summary(conn)
    assert data["messages_per_intent"] == [{"intent": "ask_price", "messages": 2},
                                           {"intent": "(none)", "messages": 1},
                                           {"intent": "schedule_test_drive", "messages": 1}]
    assert data["sentiment_distribution"] == [{"sentiment": "positive", "messages": 2, "share": 0.5},
                                              {"sentiment": "negative", "messages": 1, "share": 0.25},
                                              {"sentiment": "neutral", "messages": 1, "share": 0.25}]
    # 100, 200, 300, 400: linear interpolation between ranks
    assert data["response_time_ms"] == {"messages": 4, "mean_ms": 250.0, "min_ms": 100, "max_ms": 400,
                                        "p50_ms": 250.0, "p90_ms": 370.0, "p95_ms": 385.0, "p99_ms": 397.0}
    assert data["daily_volume"] == [
        {"day": "2024-05-01", "messages": 5, "user_messages": 3, "sessions": 2, "users": 2},
        {"day": "2024-05-02", "messages": 4, "user_messages": 1, "sessions": 2, "users": 2}]
    assert data["funnel"] == [{"stage": "sessions", "sessions": 4, "share": 1.0},
                              {"stage": "engaged", "sessions": 3, "share": 0.75},
                              {"stage": "scored", "sessions": 2, "share": 0.5},
                              {"stage": "qualified", "sessions": 1, "share": 0.25}]


def test_cli_summary_json_and_text(path):
    out = run_dbtool("analytics", "summary", "--path", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["funnel"][3] == {"stage": "qualified", "sessions": 1, "share": 0.25}
    text = run_dbtool("analytics", "summary", "--path", str(path))
    assert text.returncode == 0 and "p90_ms" in text.stdout and "2024-05-02" in text.stdout


def test_cli_summary_without_a_file_is_a_usage_error(tmp_path):
    out = run_dbtool("analytics", "summary", "--path", str(tmp_path / "none.duckdb"))
    assert out.returncode == 2 and "dbtool analytics init" in out.stderr


def bare_duckdb_file(tmp_path):
    """An existing DuckDB file that `dbtool analytics init` never ran on."""
    p = tmp_path / "bare.duckdb"
    duckdb.connect(str(p)).close()
    return p


def test_summaries_of_an_uninitialised_file_are_one_line_errors(tmp_path):
    p = bare_duckdb_file(tmp_path)
    with duckdb.connect(str(p)) as conn, pytest.raises(db.AnalyticsError, match="analytics init"):
        summaries.summary(conn)
    for args in (["summary"], ["search", "--like", "1"]):
        out = run_dbtool("analytics", *args, "--path", str(p))
        assert out.returncode == 1, (args, out.stderr)
        assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
        assert "does not exist" in out.stderr and "dbtool analytics init" in out.stderr
