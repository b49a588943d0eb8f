"""Incremental copy of the chatbot's messages and sessions from PostgreSQL into DuckDB.

No DuckDB postgres extension (not available offline, none built for DuckDB 2.0): PostgreSQL streams
`COPY (SELECT ...) TO STDOUT (FORMAT csv)` into a pipe, which DuckDB reads with read_csv (/dev/fd/N) in
one set-based INSERT each, while a thread pumps the COPY into it. Rows never pass through Python one by
one, and never touch the disk: the chatbot's messages and phone numbers are personal data, and a temporary
file would outlive a killed sync. Memory stays at a pipe's worth.

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
- deletions: rows deleted in PostgreSQL (by anything, not only erase-user) leave DuckDB too. Each run reads
  the key sets of chatbot.messages (ids up to the horizon) and chatbot.sessions (ids only), from the same
  snapshot, and deletes from message_history, message_embeddings (up to the horizon: the application may
  add embeddings of newer messages) and conversation_context what PostgreSQL no longer has. Every row
  DuckDB holds came from an earlier snapshot, so a key missing from this one was deleted.
- consent (LGPD): only rows of users with chatbot.users.consent = true reach DuckDB. The key sets above hold
  only those users' keys, so a user who withdraws consent leaves DuckDB at the next run, like a deleted one
  (counted in `removed`). A user who gives consent later comes in at the next run: users updated since
  (sessions watermark - overlap) have their older messages and sessions read again (INSERT OR IGNORE and the
  session EXCEPT keep what DuckDB already has). A change of consent more than the overlap older than the
  sessions watermark when the sync sees it is missed, like a late session.
conversation_context.summary and key_entities are derived from the session's messages up to the horizon
(PostgreSQL has no summary column): "N messages (U from the user); intents: a, b" and the latest value
of each entity key the NLP service extracted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta

import duckdb
import psycopg

from ..fetch import fetch_one
from .db import AnalyticsError, duck_error, first_line, transaction
from .embeddings import bump_version

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
        WHERE m.id > %(after)s AND m.id <= %(upto)s AND u.consent
        UNION ALL  -- users whose consent changed lately: their older messages (the newer ones are above)
        SELECT m.id, m.message_id, s.session_id, u.phone_number, m.role, m.content, m.intent, m.sentiment,
               m.confidence, m.entities, m.response_time_ms, m.created_at
        FROM chatbot.users u
        JOIN chatbot.sessions s ON s.user_id = u.id
        JOIN chatbot.messages m ON m.session_id = s.id
        WHERE u.updated_at > %(since)s AND u.consent AND m.id <= %(after)s
        ORDER BY 1
    ) TO STDOUT (FORMAT csv)"""

SESSIONS_COPY = """
    COPY (
        WITH sel AS (
            SELECT s.* FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id
            WHERE u.consent AND (s.updated_at > %(since)s OR u.updated_at > %(since)s
               OR s.id IN (SELECT m.session_id FROM chatbot.messages m WHERE m.id > %(after)s AND m.id <= %(upto)s))),
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

# The key sets that tell what DuckDB may keep: rows still in PostgreSQL, of users who consent (keys only).
MESSAGE_IDS_COPY = """
    COPY (
        SELECT m.id FROM chatbot.messages m
        JOIN chatbot.sessions s ON s.id = m.session_id
        JOIN chatbot.users u ON u.id = s.user_id
        WHERE m.id <= %(upto)s AND u.consent
    ) TO STDOUT (FORMAT csv)"""
SESSION_KEYS_COPY = """
    COPY (
        SELECT s.session_id FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id WHERE u.consent
    ) TO STDOUT (FORMAT csv)"""

MESSAGE_COLUMNS = {
    "id": "BIGINT", "message_id": "VARCHAR", "session_id": "VARCHAR", "phone_number": "VARCHAR",
    "role": "VARCHAR", "content": "VARCHAR", "intent": "VARCHAR", "sentiment": "VARCHAR",
    "confidence": "DOUBLE", "entities": "JSON", "response_time_ms": "INTEGER", "created_at": "TIMESTAMPTZ"}
CONTEXT_COLUMNS = {
    "session_id": "VARCHAR", "phone_number": "VARCHAR", "turn_id": "INTEGER", "summary": "VARCHAR",
    "key_entities": "JSON", "user_profile": "JSON", "state": "VARCHAR", "qualification_score": "DECIMAL(5,2)",
    "created_at": "TIMESTAMPTZ", "source_updated_at": "TIMESTAMPTZ"}
MESSAGE_ID_COLUMNS = {"id": "BIGINT"}
SESSION_KEY_COLUMNS = {"session_id": "VARCHAR"}


@dataclass(frozen=True)
class SyncResult:
    messages: int        # rows added to message_history
    sessions: int        # conversation_context rows added or changed
    last_message_id: int
    bytes_copied: int
    seconds: float
    removed: int = 0     # rows deleted from DuckDB because PostgreSQL no longer has them


def _read_csv(columns: dict[str, str]) -> str:
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


class _ReaderGone(Exception):
    """DuckDB stopped reading the pipe (it failed): the COPY is cancelled."""


Feed = Callable[[str], AbstractContextManager[str]]  # query -> the path DuckDB reads its rows from


@contextmanager
def _streamed(pg: psycopg.Connection, query: str, params: Mapping[str, object], sent: list[int]) -> Iterator[str]:
    """A path DuckDB's read_csv can read the rows of `query` from: a pipe that a thread fills with the COPY's
    blocks as PostgreSQL sends them. Nothing is written to disk.

    A PostgreSQL failure ends the pipe early and is raised here (even when DuckDB then fails on the truncated
    input: the cause comes first); a DuckDB failure closes the pipe, which stops and cancels the COPY.
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []
    reader_gone = threading.Event()  # then whatever psycopg raises while cancelling is not a failure of its own

    def pump() -> None:
        try:
            with pg.cursor() as cur, cur.copy(query, params) as copy:
                for block in copy:  # blocks of CSV, not rows
                    view = memoryview(block)
                    while view:
                        try:
                            view = view[os.write(write_fd, view):]
                        except BrokenPipeError:
                            reader_gone.set()
                            raise _ReaderGone from None
                    sent[0] += len(block)
        except BaseException as exc:  # handed to the main thread
            if not reader_gone.is_set():
                failure.append(exc)
        finally:
            os.close(write_fd)  # end of input for DuckDB

    thread = threading.Thread(target=pump, name="dbtool-sync-copy", daemon=True)
    thread.start()
    try:
        yield f"/dev/fd/{read_fd}"
    except BaseException:
        os.close(read_fd)  # a reader that stopped early: the pump's next write fails and ends the COPY
        thread.join()
        if failure:
            raise failure[0] from None
        raise
    os.close(read_fd)
    thread.join()
    if failure:
        raise failure[0]


def sync(pg: psycopg.Connection, duck: duckdb.DuckDBPyConnection, *, overlap: timedelta = DEFAULT_OVERLAP,
         wait: float = DEFAULT_WAIT, on_step: Callable[[str], None] | None = None) -> SyncResult:
    """Copy what is new since the last run; all or nothing on the DuckDB side.

    pg must not be inside a transaction. on_step(name) is called after each DuckDB step, before the
    commit ("messages", "sessions", "deletions", "watermark"): tests raise from it to interrupt a run.
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
    sent = [0]

    def feed(query: str) -> AbstractContextManager[str]:
        return _streamed(pg, query, params, sent)

    try:
        # Every COPY from one snapshot, so contexts match the messages and the key sets match both.
        # DuckDB reads while PostgreSQL sends: the snapshot stays open for the whole load.
        with pg.transaction():
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            pg.execute("SET LOCAL TimeZone = 'UTC'")
            pg.execute("SET LOCAL DateStyle = 'ISO, YMD'")
            pg.execute("SET LOCAL work_mem = '64MB'")  # the per-session aggregates sort in memory
            if last_updated is not None:
                params["since"] = fetch_one(pg.execute("SELECT %s::timestamptz - %s::interval",
                                                       (last_updated, overlap)))[0]
            try:
                added, changed, removed = _load(duck, feed, horizon=upto, step=step)
            except duckdb.Error as exc:
                raise duck_error("loading DuckDB failed, nothing copied", exc) from None
    except psycopg.Error as exc:
        raise AnalyticsError(f"reading chatbot rows from PostgreSQL failed, nothing copied: {first_line(exc)}",
                             sqlstate=exc.sqlstate) from None
    return SyncResult(added, changed, upto, sent[0], time.perf_counter() - t0, removed)


def _load(duck: duckdb.DuckDBPyConnection, feed: Feed, *, horizon: int,
          step: Callable[[str], None]) -> tuple[int, int, int]:
    with transaction(duck):
        with feed(MESSAGES_COPY) as source:
            added = duck.execute(
                f"INSERT OR IGNORE INTO message_history BY NAME SELECT * FROM {_read_csv(MESSAGE_COLUMNS)}",
                [source]).fetchall()[0][0]
        step("messages")
        # Only sessions that are new or differ from what DuckDB has (an EXCEPT over every column).
        with feed(SESSIONS_COPY) as source:
            duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_context AS "
                         f"SELECT * FROM {_read_csv(CONTEXT_COLUMNS)} "
                         f"EXCEPT SELECT * FROM conversation_context", [source])
        changed = duck.execute("SELECT count(*) FROM sync_context").fetchall()[0][0]
        duck.execute("DELETE FROM conversation_context WHERE session_id IN (SELECT session_id FROM sync_context)")
        duck.execute("INSERT INTO conversation_context BY NAME SELECT * FROM sync_context")
        duck.execute("DROP TABLE sync_context")
        step("sessions")
        removed = _remove_gone(duck, feed, horizon=horizon)
        step("deletions")
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_id, rows_copied, synced_at)
            VALUES ('messages', ?, ?, current_timestamp)
            ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id,
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [horizon, added])
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_updated_at, rows_copied, synced_at)
            SELECT 'sessions', max(source_updated_at), ?, current_timestamp FROM conversation_context
            ON CONFLICT (source) DO UPDATE SET  -- never back: deleting the latest session lowers the max
                last_updated_at = greatest(excluded.last_updated_at, analytics_sync_state.last_updated_at),
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [changed])
        step("watermark")
    return added, changed, removed


def _remove_gone(duck: duckdb.DuckDBPyConnection, feed: Feed, *, horizon: int) -> int:
    """Delete the rows whose key PostgreSQL's snapshot no longer has; rows deleted."""
    with feed(MESSAGE_IDS_COPY) as source:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_message_ids AS SELECT * FROM {_read_csv(MESSAGE_ID_COLUMNS)}",
                     [source])
    with feed(SESSION_KEYS_COPY) as source:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_session_keys AS "
                     f"SELECT * FROM {_read_csv(SESSION_KEY_COLUMNS)}", [source])
    removed = {table: duck.execute(
        f"DELETE FROM {table} t WHERE t.{key} <= ? AND NOT EXISTS "  # our constants, not values
        f"(SELECT 1 FROM {keys} k WHERE k.{key} = t.{key})", [horizon]).fetchall()[0][0]
        for table, key, keys in (("message_history", "id", "sync_message_ids"),
                                 ("message_embeddings", "id", "sync_message_ids"))}
    removed["conversation_context"] = duck.execute(
        "DELETE FROM conversation_context t WHERE NOT EXISTS "
        "(SELECT 1 FROM sync_session_keys k WHERE k.session_id = t.session_id)").fetchall()[0][0]
    if removed["message_embeddings"]:
        bump_version(duck)  # in-memory search matrices must drop the deleted messages' vectors
    duck.execute("DROP TABLE sync_message_ids")
    duck.execute("DROP TABLE sync_session_keys")
    return sum(removed.values())
