"""Incremental copy of the chatbot's messages and sessions from PostgreSQL into DuckDB, converging on
PostgreSQL's rows: new, changed and deleted alike.

No DuckDB postgres extension (not available offline, none built for DuckDB 2.0): PostgreSQL streams
`COPY (SELECT ...) TO STDOUT (FORMAT csv)` into a pipe, which DuckDB reads with read_csv (/dev/fd/N) in
one set-based INSERT each, while a thread pumps the COPY into it. Rows never pass through Python one by
one, and never touch the disk: the chatbot's messages and phone numbers are personal data, and a temporary
file would outlive a killed sync. Memory stays at a pipe's worth.

Every COPY of a run reads one REPEATABLE READ snapshot; everything is written in one DuckDB transaction
with the watermarks (table analytics_sync_state), so a run interrupted anywhere leaves DuckDB as it was and
the next run does the same work again.
- key sets: each run first reads what PostgreSQL has, keys only: every message id up to the horizon (below)
  with its confidence and an md5 digest of every other column the copy takes (DIGEST_FIELDS, computed alike
  on both sides: text as it is, length-prefixed, timestamps as epoch microseconds), and every session key
  with its user's phone number and updated_at. chatbot.messages has no updated_at, so the digest is what
  tells an UPDATE (a redacted text, new entities, ...) apart; comparing it costs one md5 per row on each
  side (README "Benchmarks" has the figures).
- new messages: the last chatbot.messages.id copied is the watermark. Ids come from a sequence and commit
  out of order, so a plain "id > last" would miss a row whose transaction was still open. We take a
  snapshot, note the largest visible id (the horizon), and wait until every writer in progress at that
  snapshot has finished (pg_xact_status of its xip): after that no row with an id at or below the horizon
  can still appear, and the copy takes (last, horizon]. A writer whose nextval ran before it had an xid is
  not waited for; its row, if a higher id was copied first, is one the key set has and DuckDB lacks, and
  the next run copies it, like the older rows of a user who gives consent later.
- changed messages: a row whose digest (or confidence) differs from DuckDB's is rewritten. An embedding
  (message_embeddings, written by the application) of a message whose text changed described the old text:
  it is dropped, so the old text leaves DuckDB; the copies of the phone number, session and wamid it holds
  follow the message.
- sessions: a session goes (again) into conversation_context when DuckDB lacks it, when its updated_at or
  its user's phone number differ from DuckDB's, or when one of its messages is new, changed or gone
  (summary and key_entities come from them); also each run re-reads sessions and users updated since
  (watermark - overlap). Only rows that are new or differ from DuckDB's are written (so an unchanged
  session is not counted or rewritten).
- deletions: rows deleted in PostgreSQL (by anything, not only erase-user) leave DuckDB too: message_history,
  message_embeddings (up to the horizon: the application may add embeddings of newer messages) and
  conversation_context lose what the key sets lack. Every row DuckDB holds came from an earlier snapshot,
  so a key missing from this one was deleted.
- consent (LGPD): only rows of users with chatbot.users.consent = true reach DuckDB. The key sets hold only
  those users' keys, so a user who withdraws consent leaves DuckDB at the next run, like a deleted one
  (counted in `removed`); a user who gives consent later comes in at the next run (keys DuckDB lacks).
conversation_context.summary and key_entities are derived from the session's messages up to the horizon
(PostgreSQL has no summary column): "N messages (U from the user); intents: a, b" and the latest value
of each entity key the NLP service extracted.

No statement waits without end behind another session's lock: every transaction runs with lock_timeout
(DBTOOL_DATA_LOCK_TIMEOUT, `--lock-timeout`, 10 s), and a timeout stops the run naming who holds the lock
(lock_wait.TableLockTimeout), nothing copied.
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

from .. import lock_wait
from ..fetch import fetch_one
from .db import AnalyticsError, duck_error, first_line, transaction
from .embeddings import bump_version

DEFAULT_OVERLAP = timedelta(minutes=10)
DEFAULT_WAIT = 30.0  # seconds to wait for writers that were open at the snapshot

# The columns a message's digest covers, as (PostgreSQL expression, DuckDB expression over message_history):
# the same text on both sides. Every column MESSAGES_COPY takes but id (the key) and confidence (a double,
# whose text differs between the two; compared as a value).
DIGEST_FIELDS = (
    ("m.message_id", "message_id"),
    ("s.session_id", "session_id"),
    ("u.phone_number", "phone_number"),
    ("m.role", "role"),
    ("m.content", "content"),
    ("m.intent", "intent"),
    ("m.sentiment", "sentiment"),
    ("m.entities::text", "entities::VARCHAR"),  # DuckDB keeps the JSON text as PostgreSQL's jsonb wrote it
    ("m.response_time_ms::text", "response_time_ms::VARCHAR"),
    ("CASE WHEN isfinite(m.created_at) THEN (extract(epoch FROM m.created_at) * 1000000)::bigint::text"
     " ELSE m.created_at::text END",
     "CASE WHEN isfinite(created_at) THEN epoch_us(created_at)::VARCHAR ELSE created_at::VARCHAR END"),
)


def _digest(fields: list[str], text: str, *, pg: bool) -> str:
    """md5 of the fields, each as `<characters>:<text>` (NULL as `-`): no two rows' fields run together."""
    parts = ", ".join(f"coalesce(length({f})::{text} || ':' || {f}, '-')" for f in fields)
    return f"md5(convert_to(concat({parts}), 'UTF8'))" if pg else f"md5(concat({parts}))"


PG_DIGEST = _digest([pg for pg, _ in DIGEST_FIELDS], "text", pg=True)
DUCK_DIGEST = _digest([duck for _, duck in DIGEST_FIELDS], "VARCHAR", pg=False)

MESSAGES_COPY = """
    COPY (
        SELECT m.id, m.message_id, s.session_id, u.phone_number, m.role, m.content, m.intent, m.sentiment,
               m.confidence, m.entities, m.response_time_ms, m.created_at
        FROM chatbot.messages m
        JOIN chatbot.sessions s ON s.id = m.session_id
        JOIN chatbot.users u ON u.id = s.user_id
        WHERE ((m.id > %(after)s AND m.id <= %(upto)s) OR m.id = ANY(%(ids)s::bigint[])) AND u.consent
        ORDER BY 1
    ) TO STDOUT (FORMAT csv)"""

SESSIONS_COPY = """
    COPY (
        WITH sel AS (
            SELECT s.* FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id
            WHERE u.consent AND (s.updated_at > %(since)s OR u.updated_at > %(since)s
               OR s.session_id = ANY(%(sessions)s::text[])
               OR s.id IN (SELECT m.session_id FROM chatbot.messages m
                           WHERE (m.id > %(after)s AND m.id <= %(upto)s) OR m.id = ANY(%(ids)s::bigint[])))),
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

# The key sets that tell what DuckDB may keep, and whether what it holds is current: rows still in
# PostgreSQL, of users who consent (keys, and a digest of each message).
MESSAGE_KEYS_COPY = f"""
    COPY (
        SELECT m.id, m.confidence, {PG_DIGEST}
        FROM chatbot.messages m
        JOIN chatbot.sessions s ON s.id = m.session_id
        JOIN chatbot.users u ON u.id = s.user_id
        WHERE m.id <= %(upto)s AND u.consent
    ) TO STDOUT (FORMAT csv)"""
SESSION_KEYS_COPY = """
    COPY (
        SELECT s.session_id, u.phone_number, s.updated_at
        FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id WHERE u.consent
    ) TO STDOUT (FORMAT csv)"""

MESSAGE_COLUMNS = {
    "id": "BIGINT", "message_id": "VARCHAR", "session_id": "VARCHAR", "phone_number": "VARCHAR",
    "role": "VARCHAR", "content": "VARCHAR", "intent": "VARCHAR", "sentiment": "VARCHAR",
    "confidence": "DOUBLE", "entities": "JSON", "response_time_ms": "INTEGER", "created_at": "TIMESTAMPTZ"}
CONTEXT_COLUMNS = {
    "session_id": "VARCHAR", "phone_number": "VARCHAR", "turn_id": "INTEGER", "summary": "VARCHAR",
    "key_entities": "JSON", "user_profile": "JSON", "state": "VARCHAR", "qualification_score": "DECIMAL(5,2)",
    "created_at": "TIMESTAMPTZ", "source_updated_at": "TIMESTAMPTZ"}
MESSAGE_KEY_COLUMNS = {"id": "BIGINT", "confidence": "DOUBLE", "digest": "VARCHAR"}
SESSION_KEY_COLUMNS = {"session_id": "VARCHAR", "phone_number": "VARCHAR", "updated_at": "TIMESTAMPTZ"}


@dataclass(frozen=True)
class SyncResult:
    messages: int        # rows added to message_history
    sessions: int        # conversation_context rows added or changed
    last_message_id: int
    bytes_copied: int
    seconds: float
    removed: int = 0     # rows deleted from DuckDB because PostgreSQL no longer has them
    updated: int = 0     # message_history rows rewritten because they changed in PostgreSQL
    embeddings_dropped: int = 0  # message_embeddings rows dropped because their message's text changed


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


def _horizon(pg: psycopg.Connection, *, wait: float, lock_timeout: float) -> int:
    """Largest message id after which no lower id can still commit (see the module docstring)."""
    try:
        return _wait_for_horizon(pg, wait=wait, lock_timeout=lock_timeout)
    except psycopg.errors.LockNotAvailable:
        raise  # named by the caller
    except psycopg.Error as exc:  # e.g. an unmigrated database: one line, like the COPY below
        raise AnalyticsError(f"reading chatbot.messages from PostgreSQL failed: {first_line(exc)}",
                             sqlstate=exc.sqlstate) from None


def _wait_for_horizon(pg: psycopg.Connection, *, wait: float, lock_timeout: float) -> int:
    with pg.transaction():
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        lock_wait.set_lock_timeout(pg, lock_timeout, local=True)
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


Feed = Callable[..., AbstractContextManager[str]]  # (query, **params) -> the path DuckDB reads its rows from


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
         wait: float = DEFAULT_WAIT, on_step: Callable[[str], None] | None = None,
         lock_timeout: float | None = None) -> SyncResult:
    """Copy what is new or changed since the last run, and remove what is gone; all or nothing on the DuckDB side.

    pg must not be inside a transaction. on_step(name) is called after each DuckDB step, before the
    commit ("messages", "sessions", "deletions", "watermark"): tests raise from it to interrupt a run.
    Each PostgreSQL statement waits at most `lock_timeout` seconds (default DBTOOL_DATA_LOCK_TIMEOUT) for a
    lock; then nothing is copied and lock_wait.TableLockTimeout names who holds it.
    """
    t0 = time.perf_counter()
    step = on_step or (lambda _name: None)
    lock_wait_s = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
    try:
        last_id, last_updated = _state(duck)
    except duckdb.Error as exc:
        raise duck_error("reading the sync watermarks failed", exc) from None
    with lock_wait.naming_blockers(pg, lock_wait_s, command="analytics sync", schemas=["chatbot"],
                                   setting=lock_wait.DATA_SETTING, outcome="nothing copied"):
        horizon = _horizon(pg, wait=wait, lock_timeout=lock_wait_s)
        since = "-infinity" if last_updated is None else last_updated
        upto = max(horizon, last_id)
        params: dict[str, object] = {"after": last_id, "upto": upto, "since": since, "ids": [], "sessions": []}
        sent = [0]

        def feed(query: str, **more: object) -> AbstractContextManager[str]:
            return _streamed(pg, query, {**params, **more}, sent)

        try:
            # Every COPY from one snapshot, so contexts match the messages and the key sets match both.
            # DuckDB reads while PostgreSQL sends: the snapshot stays open for the whole load.
            with pg.transaction():
                pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                lock_wait.set_lock_timeout(pg, lock_wait_s, local=True)
                pg.execute("SET LOCAL TimeZone = 'UTC'")
                pg.execute("SET LOCAL DateStyle = 'ISO, YMD'")
                pg.execute("SET LOCAL work_mem = '64MB'")  # the per-session aggregates sort in memory
                if last_updated is not None:
                    params["since"] = fetch_one(pg.execute("SELECT %s::timestamptz - %s::interval",
                                                           (last_updated, overlap)))[0]
                try:
                    done = _load(duck, feed, after=last_id, horizon=upto, step=step, every_session=last_updated is None)
                except duckdb.Error as exc:
                    raise duck_error("loading DuckDB failed, nothing copied", exc) from None
        except psycopg.errors.LockNotAvailable:
            raise  # naming_blockers names who holds the lock
        except psycopg.Error as exc:
            raise AnalyticsError(f"reading chatbot rows from PostgreSQL failed, nothing copied: {first_line(exc)}",
                                 sqlstate=exc.sqlstate) from None
    return SyncResult(done.added, done.changed, upto, sent[0], time.perf_counter() - t0, done.removed,
                      done.updated, done.embeddings_dropped)


@dataclass(frozen=True)
class _Loaded:
    added: int
    changed: int
    removed: int
    updated: int
    embeddings_dropped: int


def _load(duck: duckdb.DuckDBPyConnection, feed: Feed, *, after: int, horizon: int,
          step: Callable[[str], None], every_session: bool = False) -> _Loaded:
    """One DuckDB transaction (see the module docstring). every_session: SESSIONS_COPY reads every session
    anyway (a first run), so the sessions found out of date need not be named to it."""
    with transaction(duck):
        with feed(MESSAGE_KEYS_COPY) as source:
            duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_message_keys AS "
                         f"SELECT * FROM {_read_csv(MESSAGE_KEY_COLUMNS)}", [source])
        with feed(SESSION_KEYS_COPY) as source:
            duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_session_keys AS "
                         f"SELECT * FROM {_read_csv(SESSION_KEY_COLUMNS)}", [source])
        # Messages DuckDB holds that differ from PostgreSQL's (held), and those up to the watermark it lacks.
        duck.execute(f"""
            CREATE OR REPLACE TEMP TABLE sync_stale AS
            SELECT k.id, h.id IS NOT NULL AS held, h.session_id, h.content
            FROM sync_message_keys k
            LEFT JOIN (SELECT id, session_id, content, confidence, {DUCK_DIGEST} AS digest FROM message_history) h
                   ON h.id = k.id
            WHERE CASE WHEN h.id IS NULL THEN k.id <= ?
                       ELSE h.confidence IS DISTINCT FROM k.confidence OR h.digest <> k.digest END
            """, [after])  # DUCK_DIGEST: our constant
        stale = [r[0] for r in duck.execute("SELECT id FROM sync_stale ORDER BY id").fetchall()]
        # Sessions whose context is out of date: missing, another updated_at or phone number, or a message of
        # theirs changed (in its old session) or gone. Those of new and changed messages SESSIONS_COPY adds.
        touched = [r[0] for r in duck.execute("""
            SELECT session_id FROM sync_stale WHERE held
            UNION SELECT h.session_id FROM message_history h
                  WHERE h.id <= ? AND NOT EXISTS (SELECT 1 FROM sync_message_keys k WHERE k.id = h.id)
            UNION SELECT k.session_id FROM sync_session_keys k
                  LEFT JOIN conversation_context c ON c.session_id = k.session_id
                  WHERE c.session_id IS NULL OR c.phone_number IS DISTINCT FROM k.phone_number
                     OR c.source_updated_at IS DISTINCT FROM k.updated_at
            ORDER BY 1""", [horizon]).fetchall()]
        updated = duck.execute("DELETE FROM message_history WHERE id IN (SELECT id FROM sync_stale WHERE held)"
                               ).fetchall()[0][0]
        with feed(MESSAGES_COPY, ids=stale) as source:
            written = duck.execute(
                f"INSERT OR IGNORE INTO message_history BY NAME SELECT * FROM {_read_csv(MESSAGE_COLUMNS)}",
                [source]).fetchall()[0][0]
        dropped = _follow_messages(duck)
        step("messages")
        # Only sessions that are new or differ from what DuckDB has (an EXCEPT over every column).
        with feed(SESSIONS_COPY, ids=stale, sessions=[] if every_session else touched) as source:
            duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_context AS "
                         f"SELECT * FROM {_read_csv(CONTEXT_COLUMNS)} "
                         f"EXCEPT SELECT * FROM conversation_context", [source])
        changed = duck.execute("SELECT count(*) FROM sync_context").fetchall()[0][0]
        duck.execute("DELETE FROM conversation_context WHERE session_id IN (SELECT session_id FROM sync_context)")
        duck.execute("INSERT INTO conversation_context BY NAME SELECT * FROM sync_context")
        duck.execute("DROP TABLE sync_context")
        step("sessions")
        removed = _remove_gone(duck, horizon=horizon)
        step("deletions")
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_id, rows_copied, synced_at)
            VALUES ('messages', ?, ?, current_timestamp)
            ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id,
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [horizon, written])
        duck.execute("""
            INSERT INTO analytics_sync_state (source, last_updated_at, rows_copied, synced_at)
            SELECT 'sessions', max(source_updated_at), ?, current_timestamp FROM conversation_context
            ON CONFLICT (source) DO UPDATE SET  -- never back: deleting the latest session lowers the max
                last_updated_at = greatest(excluded.last_updated_at, analytics_sync_state.last_updated_at),
                rows_copied = analytics_sync_state.rows_copied + excluded.rows_copied, synced_at = excluded.synced_at
            """, [changed])
        step("watermark")
        for table in ("sync_stale", "sync_message_keys", "sync_session_keys"):
            duck.execute(f"DROP TABLE {table}")  # our constants
    return _Loaded(written - updated, changed, removed, updated, dropped)


def _follow_messages(duck: duckdb.DuckDBPyConnection) -> int:
    """Embeddings of the messages just rewritten: dropped where the text changed (the vector, and the copy of
    the text, were made from the old one), else given the message's phone number, session and wamid;
    embeddings dropped."""
    dropped = duck.execute("""
        DELETE FROM message_embeddings WHERE id IN (
            SELECT s.id FROM sync_stale s JOIN message_history h ON h.id = s.id
            WHERE s.held AND h.content IS DISTINCT FROM s.content)""").fetchall()[0][0]
    moved = duck.execute("""
        UPDATE message_embeddings e SET phone_number = h.phone_number, session_id = h.session_id,
                                        message_id = h.message_id
        FROM message_history h, sync_stale s
        WHERE s.held AND s.id = e.id AND h.id = e.id
          AND (e.phone_number <> h.phone_number OR e.session_id <> h.session_id
               OR e.message_id IS DISTINCT FROM h.message_id)""").fetchall()[0][0]
    if dropped or moved:
        bump_version(duck)  # in-memory search matrices hold the vectors, phone numbers and sessions
    return dropped


def _remove_gone(duck: duckdb.DuckDBPyConnection, *, horizon: int) -> int:
    """Delete the rows whose key PostgreSQL's snapshot (the key tables _load read) no longer has; rows deleted."""
    removed = {table: duck.execute(
        f"DELETE FROM {table} t WHERE t.id <= ? AND NOT EXISTS "  # our constants, not values
        f"(SELECT 1 FROM sync_message_keys k WHERE k.id = t.id)", [horizon]).fetchall()[0][0]
        for table in ("message_history", "message_embeddings")}
    removed["conversation_context"] = duck.execute(
        "DELETE FROM conversation_context t WHERE NOT EXISTS "
        "(SELECT 1 FROM sync_session_keys k WHERE k.session_id = t.session_id)").fetchall()[0][0]
    if removed["message_embeddings"]:
        bump_version(duck)  # in-memory search matrices must drop the deleted messages' vectors
    return sum(removed.values())
