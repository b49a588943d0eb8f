"""erase_phone removes one user's rows from the three DuckDB tables and says how many."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from analytics_helpers import count, fresh_duck
from dbtool.analytics.db import AnalyticsError
from dbtool.analytics.embeddings import add_embeddings
from dbtool.analytics.erase import erase_phone

A, B = "+5511911111111", "+5511922222222"


def test_erase_phone_counts_and_leaves_others():
    duck = fresh_duck()
    duck.execute("""
        INSERT INTO message_history (id, session_id, phone_number, role, content, created_at)
        SELECT i, 's' || (i % 2), CASE WHEN i <= 3 THEN ? ELSE ? END, 'user', 'hi', TIMESTAMPTZ '2024-05-01 10:00+00'
        FROM range(1, 8) t(i)""", [A, B])
    duck.execute("""
        INSERT INTO conversation_context (session_id, phone_number, state, created_at, source_updated_at)
        VALUES ('sa', ?, 'GREETING', now(), now()), ('sb', ?, 'GREETING', now(), now())""", [A, B])
    rng = np.random.default_rng(3)
    add_embeddings(duck, [{"id": i, "session_id": "sa", "phone_number": A if i < 3 else B, "content": "x",
                           "embedding": rng.standard_normal(384), "model_name": "m"} for i in range(5)])
    assert erase_phone(duck, A) == {"message_history": 3, "conversation_context": 1, "message_embeddings": 3}
    assert (count(duck, "message_history"), count(duck, "conversation_context"), count(duck, "message_embeddings")) \
        == (4, 1, 2)
    assert duck.execute("SELECT count(*) FROM message_history WHERE phone_number = ?", [A]).fetchall() == [(0,)]
    assert erase_phone(duck, A) == {"message_history": 0, "conversation_context": 0, "message_embeddings": 0}


def test_erase_phone_on_an_uninitialised_file_is_an_analytics_error():
    with duckdb.connect(":memory:") as duck, pytest.raises(AnalyticsError, match="nothing erased.*analytics init"):
        erase_phone(duck, A)
