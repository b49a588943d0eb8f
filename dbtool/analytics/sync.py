"""Incremental copy of the chatbot's messages and sessions from PostgreSQL into DuckDB.

No DuckDB postgres extension (not available offline, none built for DuckDB 2.0): PostgreSQL streams
`COPY (SELECT ...) TO STDOUT (FORMAT csv)` into temporary files, DuckDB reads them with read_csv in one
set-based INSERT each. Rows never pass through Python one by one.

Watermarks (table analytics_sync_state), updated in the same DuckDB transaction as the rows, so a run
interrupted anywhere leaves DuckDB as it was and the next run copies the same rows again:
- messages: the last chatbot.messages.id copied. Ids come from a sequence and commit out of order, so a
  plain "id > last" would miss a row whose transaction was still open. We take a snapshot, note the
  largest visible id (the horizon), and wait until every writer in progress at that snapshot has
  finished (pg_xact_status of its xip): after that no row with an id at or below the horizon can still
  appear, and the copy takes (last, horizon]. One narrow race is left: nextval() needs no transaction id,
  so a writer whose nextval ran before its transaction had an xid (its first write, or an explicit
  `SELECT nextval` before the INSERT) is not in the snapshot's xip and is not waited for; if a higher
  id commits and is copied first, that row could be skipped for good. So each run re-reads the
  REREAD_IDS ids below the last watermark as well: INSERT OR IGNORE drops the rows DuckDB already has
  (they are not counted), and such a late row is picked up by the next run. (Rows inserted later with
  explicit ids further below the watermark are still missed.)
- sessions: chatbot.sessions.updated_at is the writer's transaction start time, so it can also arrive
  late; each run re-reads sessions updated since (watermark - overlap) plus the sessions of the new
  messages, and writes only the rows that are new or differ from DuckDB's (so an unchanged session is
  not counted or rewritten).
conversation_context.summary and key_entities are derived from the session's messages up to the horizon
(PostgreSQL has no summary column): "N messages (U from the user); intents: a, b" and the latest value
of each entity key the NLP service extracted.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg

from ..fetch import fetch_one
from .db import AnalyticsError, duck_error, first_line

DEFAULT_OVERLAP = timedelta(minutes=10)
DEFAULT_WAIT = 30.0  # seconds to wait for writers that were open at the snapshot
REREAD_IDS = 1000  # ids below the last watermark read again each run (the nextval-before-xid race)

MESSAGES_COPY = """
    COPY (
        SELECT m.id, m.message_id, s.session_id, u.phone_number, m.role, m.content, m.intent, m.sentiment,
               m.confidence, m.entities, m.response_time_ms, m.created_at
        FROM chatbot.messages m
        JOIN chatbot.sessions s ON s.id = m.session_id
        JOIN chatbot.users u ON u.id = s.user_id
        WHERE m.id > %(after)s AND m.id <= %(upto)s
        ORDER BY m.id
    ) TO STDOUT (FORMAT csv)"""

SESSIONS_COPY = """
    COPY (
        WITH sel AS (
            SELECT s.* FROM chatbot.sessions s
            WHERE s.updated_at > %(since)s
               OR s.id IN (SELECT m.session_id FROM chatbot.messages m WHERE m.id > %(after)s AND m.id <= %(upto)s)),
        msg AS (
            SELECT m.id, m.session_id, m.role, m.intent, m.entities FROM chatbot.messages m
            WHERE m.session_id IN (SELECT id FROM sel) AND m.id <= %(upto)s),
        st AS (
            SELECT session_id, count(*) AS n, count(*) FILTER (WHERE role = 'user') AS n_user,
                   string_agg(DISTINCT intent, ', ' ORDER BY intent) AS intents
            FROM msg GROUP BY session_id),
        ke AS (  -- jsonb keeps the last value of a repeated key: ORDER BY id makes it the latest one
            SELECT m.session_id, jsonb_object_agg(e.key, e.value ORDER BY m.id) AS entities
            FROM msg m CROSS JOIN LATERAL jsonb_each(m.entities) e
            WHERE jsonb_typeof(m.entities) = 'object' GROUP BY m.session_id)
        SELECT s.session_id, u.phone_number, s.turn_id,
               format('%%s messages (%%s from the user); intents: %%s',
                      coalesce(st.n, 0), coalesce(st.n_user, 0), coalesce(st.intents, 'none')),
               coalesce(ke.entities, '{}'::jsonb), s.user_profile, s.state, s.qualification_score,
               s.created_at, s.updated_at
        FROM sel s
        JOIN chatbot.users u ON u.id = s.user_id
        LEFT JOIN st ON st.session_id = s.id
        LEFT JOIN ke ON ke.session_id = s.id
    ) TO STDOUT (FORMAT csv)"""

MESSAGE_COLUMNS = {
    "id": "BIGINT", "message_id": "VARCHAR", "session_id": "VARCHAR", "phone_number": "VARCHAR",
    "role": "VARCHAR", "content": "VARCHAR", "intent": "VARCHAR", "sentiment": "VARCHAR",
    "confidence": "DOUBLE", "entities": "JSON", "response_time_ms": "INTEGER", "created_at": "TIMESTAMPTZ"}
CONTEXT_COLUMNS = {
    "session_id": "VARCHAR", "phone_number": "VARCHAR", "turn_id": "INTEGER", "summary": "VARCHAR",
    "key_entities": "JSON", "user_profile": "JSON", "state": "VARCHAR", "qualification_score": "DECIMAL(5,2)",
    "created_at": "TIMESTAMPTZ", "source_updated_at": "TIMESTAMPTZ"}


@dataclass(frozen=True)
class SyncResult:
    messages: int        # rows added to message_history
    sessions: int        # conversation_context rows added or changed
    last_message_id: int
    bytes_copied: int
    seconds: float


def _read_csv(path: Path, columns: dict[str, str]) -> str:
    """A read_csv call for PostgreSQL's CSV: NULL is an empty unquoted field, "" an empty string."""
    spec = ", ".join(f"'{name}': '{typ}'" for name, typ in columns.items())  # our constants, not values
    return (f"read_csv(?, header = false, auto_detect = false, columns = {{{spec}}}, "
            f"quote = '\"', escape = '\"', allow_quoted_nulls = false)")


def _state(duck: duckdb.DuckDBPyConnection) -> tuple[int, str | None]:
    rows = dict((r[0], r[1:]) for r in duck.execute(
        "SELECT source, last_id, strftime(timezone('UTC', last_updated_at), '%Y-%m-%d %H:%M:%S.%f+00')"
        " FROM analytics_sync_state"
    ).fetchall())
    last_id = (rows.get("messages") or (0, None))[0] or 0
    last_updated = (rows.get("sessions") or (None, None))[1]
    return last_id, last_updated


def _horizon(pg: psycopg.Connection, *, wait: float) -> int:
    """Largest message id after which no lower id can still commit (see the module docstring)."""
    try:
        return _wait_for_horizon(pg, wait=wait)
    except psycopg.Error as exc:  # e.g. an unmigrated database: one line, like the COPY below
        raise AnalyticsError(f"reading chatbot.messages from PostgreSQL failed: {first_line(exc)}",
                             sqlstate=exc.sqlstate) from None


def _wait_for_horizon(pg: psycopg.Connection, *, wait: float) -> int:
    with pg.transaction():
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snap, horizon = fetch_one(pg.execute(
            "SELECT pg_current_snapshot()::text, (SELECT coalesce(max(id), 0) FROM chatbot.messages)"))
    deadline = time.monotonic() + wait
    while True:
        with pg.transaction():
            open_xids = [r[0] for r in pg.execute(
                "SELECT x::text FROM pg_snapshot_xip(%s::pg_snapshot) x"
                " WHERE pg_xact_status(x) = 'in progress'", (snap,)).fetchall()]
        if not open_xids:
            return horizon
        if time.monotonic() > deadline:
            raise AnalyticsError(f"transactions {', '.join(open_xids[:5])} have stayed open for {wait:.0f}s;"
                                 " their messages could be missed, so nothing was copied (try again later)")
        time.sleep(0.05)


def _copy_to(pg: psycopg.Connection, query: str, params: Mapping[str, object], path: Path) -> int:
    size = 0
    with pg.cursor() as cur, cur.copy(query, params) as copy, open(path, "wb") as out:
        for block in copy:  # blocks of CSV as PostgreSQL sends them, not rows
            out.write(block)
            size += len(block)
    return size


def sync(pg: psycopg.Connection, duck: duckdb.DuckDBPyConnection, *, overlap: timedelta = DEFAULT_OVERLAP,
         wait: float = DEFAULT_WAIT, on_step: Callable[[str], None] | None = None) -> SyncResult:
    """Copy what is new since the last run; all or nothing on the DuckDB side.

    pg must not be inside a transaction. on_step(name) is called after each DuckDB step, before the
    commit ("messages", "sessions", "watermark"): tests raise from it to interrupt a run halfway.
    """
    t0 = time.perf_counter()
    step = on_step or (lambda _name: None)
    try:
        last_id, last_updated = _state(duck)
    except duckdb.Error as exc:
        raise duck_error("reading the sync watermarks failed", exc) from None
    horizon = _horizon(pg, wait=wait)
    since = "-infinity" if last_updated is None else last_updated
    upto = max(horizon, last_id)
    params: dict[str, object] = {"after": max(0, last_id - REREAD_IDS), "upto": upto, "since": since}
    with tempfile.TemporaryDirectory(prefix="dbtool-sync-") as tmp:
        messages_csv, sessions_csv = Path(tmp) / "messages.csv", Path(tmp) / "sessions.csv"
        try:
            with pg.transaction():  # both files from one snapshot, so contexts match the messages
                pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                pg.execute("SET LOCAL TimeZone = 'UTC'")
                pg.execute("SET LOCAL DateStyle = 'ISO, YMD'")
                pg.execute("SET LOCAL work_mem = '64MB'")  # the per-session aggregates sort in memory
                if last_updated is not None:
                    params["since"] = fetch_one(pg.execute("SELECT %s::timestamptz - %s::interval",
                                                           (last_updated, overlap)))[0]
                size = _copy_to(pg, MESSAGES_COPY, params, messages_csv)
                size += _copy_to(pg, SESSIONS_COPY, params, sessions_csv)
        except psycopg.Error as exc:
            raise AnalyticsError(f"reading chatbot rows from PostgreSQL failed: {first_line(exc)}",
                                 sqlstate=exc.sqlstate) from None
        try:
            added, changed = _load(duck, messages_csv, sessions_csv, horizon=upto, step=step)
        except duckdb.Error as exc:
            raise duck_error("loading DuckDB failed, nothing copied", exc) from None
    return SyncResult(added, changed, upto, size, time.perf_counter() - t0)


def _load(duck: duckdb.DuckDBPyConnection, messages_csv: Path, sessions_csv: Path, *, horizon: int,
          step: Callable[[str], None]) -> tuple[int, int]:
    duck.execute("BEGIN")
    try:
        added = duck.execute(
            f"INSERT OR IGNORE INTO message_history BY NAME SELECT * FROM {_read_csv(messages_csv, MESSAGE_COLUMNS)}",
            [str(messages_csv)]).fetchall()[0][0]
        step("messages")
        # Only sessions that are new or differ from what DuckDB has (an EXCEPT over every column).
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_context AS "
                     f"SELECT * FROM {_read_csv(sessions_csv, CONTEXT_COLUMNS)} "
                     f"EXCEPT SELECT * FROM conversation_context", [str(sessions_csv)])
        changed = duck.execute("SELECT count(*) FROM sync_context").fetchall()[0][0]
        duck.execute("DELETE FROM conversation_context WHERE session_id IN (SELECT session_id FROM sync_context)")
        duck.execute("INSERT INTO conversation_context BY NAME SELECT * FROM sync_context")
        duck.execute("DROP TABLE sync_context")
        step("sessions")
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_id, rows_copied, synced_at)
            VALUES ('messages', ?, ?, current_timestamp)
            ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id,
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [horizon, added])
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_updated_at, rows_copied, synced_at)
            SELECT 'sessions', max(source_updated_at), ?, current_timestamp FROM conversation_context
            ON CONFLICT (source) DO UPDATE SET last_updated_at = excluded.last_updated_at,
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [changed])
        step("watermark")
        duck.execute("COMMIT")
    except BaseException:
        duck.execute("ROLLBACK")
        raise
    return added, changed
