"""Shared by the analytics tests: a fresh DuckDB from sql/duckdb/, and chatbot rows in PostgreSQL."""

from __future__ import annotations

import duckdb
import psycopg

from dbtool.analytics.db import apply_schema


def fresh_duck() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:")
    apply_schema(conn)
    return conn


def count(duck: duckdb.DuckDBPyConnection, table: str) -> int:
    return duck.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # table: a test constant


def add_user(pg: psycopg.Connection, phone: str, *, consent: bool = True) -> int:
    """A user; with consent (LGPD) by default, since only those users' rows reach DuckDB."""
    return pg.execute("INSERT INTO chatbot.users (phone_number, name, consent, consent_at)"
                      " VALUES (%s, %s, %s, CASE WHEN %s THEN now() END) RETURNING id",
                      (phone, f"user {phone}", consent, consent)).fetchone()[0]


def add_session(pg: psycopg.Connection, user_id: int, key: str, *, state: str = "GREETING",
                score: float = 0, profile: str = "{}") -> int:
    return pg.execute(
        "INSERT INTO chatbot.sessions (session_id, user_id, state, qualification_score, user_profile)"
        " VALUES (%s, %s, %s, %s, %s::jsonb) RETURNING id", (key, user_id, state, score, profile)).fetchone()[0]


def add_messages(pg: psycopg.Connection, session: int, n: int, *, role: str = "user", intent: str | None = None,
                 content: str = "msg", entities: str = "{}") -> None:
    pg.execute(
        "INSERT INTO chatbot.messages (session_id, role, content, intent, entities)"
        " SELECT %s, %s, %s || ' ' || g, %s, %s::jsonb FROM generate_series(1, %s) g",
        (session, role, content, intent, entities, n))
