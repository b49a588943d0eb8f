"""Incremental copy of the chatbot's messages and sessions from PostgreSQL into DuckDB, converging on
PostgreSQL's rows: new, changed and deleted alike.

No DuckDB postgres extension (not available offline, none built for DuckDB 2.0), no pyarrow (not a
dependency): PostgreSQL streams `COPY (SELECT ...) TO STDOUT (FORMAT csv)` into a pipe, which DuckDB reads
with read_csv (/dev/fd/N) in one set-based INSERT each, while a thread pumps the COPY into it. Rows never
pass through Python one by one, and never touch the disk: the chatbot's messages and phone numbers are
personal data, and a temporary file would outlive a killed sync. Memory stays at a pipe's worth.

Every COPY of a run reads one REPEATABLE READ snapshot; everything is written in one DuckDB transaction
with the watermarks (table analytics_sync_state) and the baseline (analytics_sync_baseline, below), so a run
interrupted anywhere leaves DuckDB as it was and the next run does the same work again.

Change detection (nothing new costs one query). After each run DuckDB holds exactly what that run's
snapshot S showed (of consenting users, message ids up to the watermark); the baseline records S
(pg_current_snapshot()), the row counts of chatbot.users, sessions and messages in S, and which server,
database and tables it read (postmaster start, oids). The next run first asks PostgreSQL, in one query,
whether anything changed since S:
- the current snapshot equals S: no transaction that wrote anything has ended since, so nothing changed
  (no table is read);
- else: a row of the three tables whose xmin is not visible in S (inserted or updated since: an UPDATE
  writes a new row version, with the writer's xid), a row count that differs from S's (a DELETE), or a
  message id above the watermark means a change. The three tables are scanned for it (xmin and a count:
  no digest, nothing sent), about 30 ms for 200,000 messages.
xmin is a 32-bit xid: it is compared by age() (the distance back from the next xid, wraparound-aware)
with the age of S's xmax, which is exact while S is less than 2^31 xids old; the query asks for a full run
past 2^30 xids (xid8 arithmetic on the snapshots), and when the server, database or tables are not the
ones the baseline names (a restart, a restore, another database: xids may have gone back). VACUUM FREEZE
keeps a row's xmin (only a flag changes), so freezing is no change. A frozen row older than 2^31 xids can
show an xmin that aliases a recent one: that costs a needless full comparison, never a missed change.
No schema change in PostgreSQL (chatbot.messages has no updated_at) and no statistics counters
(pg_stat_user_tables lags by up to a second or more, and resets): PostgreSQL's own visibility rules.

What a run copies:
- first run (DuckDB's tables empty): every message up to the horizon (below) and every session; no key
  sets, no comparison.
- key sets: every message id up to the horizon, and every session key with its user's phone number and
  updated_at, of consenting users. For the messages that may have changed since S (the baseline's xmin test
  on the message, its session and its user), also the confidence and an md5 digest of every other column
  the copy takes (DIGEST_FIELDS, computed alike on both sides: text as it is, length-prefixed, timestamps as
  epoch microseconds); without a usable baseline, for every message (about 2.4 s at 200,000 messages).
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
  its user's phone number differ from DuckDB's, when it or its user changed since S (xmin), or when one of
  its messages is new, changed or gone; without a usable baseline, each run also re-reads the sessions and
  users updated since (watermark - overlap), for late commits. Only rows that are new or differ from
  DuckDB's are written (so an unchanged session is not counted or rewritten). summary and key_entities are
  derived from the session's messages up to the horizon (PostgreSQL has no summary column): "N messages
  (U from the user); intents: a, b" (intents distinct, in byte order) and the latest value of each entity
  key the NLP service extracted. DuckDB computes them from message_history, which by then holds exactly
  those messages; key_entities is the latest message's entities when its keys cover every key the session's
  messages have (the jsonb text is then the one PostgreSQL's aggregate prints), else PostgreSQL aggregates
  it (jsonb_object_agg) for those sessions only.
- deletions: rows deleted in PostgreSQL (by anything, not only erase-user) leave DuckDB too: message_history,
  message_embeddings (up to the horizon: the application may add embeddings of newer messages) and
  conversation_context lose what the key sets lack. Every row DuckDB holds came from an earlier snapshot,
  so a key missing from this one was deleted.
- consent (LGPD): only rows of users with chatbot.users.consent = true reach DuckDB. The key sets hold only
  those users' keys, so a user who withdraws consent leaves DuckDB at the next run, like a deleted one
  (counted in `removed`); a user who gives consent later comes in at the next run (keys DuckDB lacks).

No statement waits without end behind another session's lock: every transaction runs with lock_timeout
(DBTOOL_DATA_LOCK_TIMEOUT, `--lock-timeout`, 10 s), and a timeout stops the run naming who holds the lock
(lock_wait.TableLockTimeout), nothing copied.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
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
SYNC_FORMAT = 2  # what a baseline promises about DuckDB's rows; another format (an older dbtool's) is no baseline
PIPE_BATCH = 1 << 16  # bytes of CSV per write to the pipe (a row per write costs a system call per row)
PIPE_SIZE = 1 << 20  # the pipe's capacity (F_SETPIPE_SZ; 1 MiB is what an unprivileged process may ask)
BACKLOG = 16 << 20  # bytes of CSV at most waiting between PostgreSQL and DuckDB (see _streamed)
FAR = 2 ** 30  # xids since the baseline's snapshot beyond which its xmin test is not trusted (exact below 2^31)

# The columns a message's digest covers, as (PostgreSQL expression, DuckDB expression over message_history):
# the same text on both sides. Every column MESSAGES_COPY takes but id (the key) and confidence (a double,
# whose text differs between the two; compared as a value).
DIGEST_FIELDS = (
    ("m.message_id", "h.message_id"),
    ("s.session_id", "h.session_id"),
    ("u.phone_number", "h.phone_number"),
    ("m.role", "h.role"),
    ("m.content", "h.content"),
    ("m.intent", "h.intent"),
    ("m.sentiment", "h.sentiment"),
    ("m.entities::text", "h.entities::VARCHAR"),  # DuckDB keeps the JSON text as PostgreSQL's jsonb wrote it
    ("m.response_time_ms::text", "h.response_time_ms::VARCHAR"),
    ("CASE WHEN isfinite(m.created_at) THEN (extract(epoch FROM m.created_at) * 1000000)::bigint::text"
     " ELSE m.created_at::text END",
     "CASE WHEN isfinite(h.created_at) THEN epoch_us(h.created_at)::VARCHAR ELSE h.created_at::VARCHAR END"),
)


def _digest(fields: list[str], text: str, *, pg: bool) -> str:
    """md5 of the fields, each as `<characters>:<text>` (NULL as `-`): no two rows' fields run together."""
    parts = ", ".join(f"coalesce(length({f})::{text} || ':' || {f}, '-')" for f in fields)
    return f"md5(convert_to(concat({parts}), 'UTF8'))" if pg else f"md5(concat({parts}))"


PG_DIGEST = _digest([pg for pg, _ in DIGEST_FIELDS], "text", pg=True)
DUCK_DIGEST = _digest([duck for _, duck in DIGEST_FIELDS], "VARCHAR", pg=False)


def _since(xmin: str) -> str:
    """SQL: the row version whose xmin this is was written after the snapshot %(base)s (not visible in it).

    age(x) counts back from the next xid (wraparound-aware, INT_MAX for frozen and bootstrap xids); an xid
    at or after the snapshot's xmax is at most as old as that xmax, and one in its xip list was running."""
    return (f"(age({xmin}) BETWEEN 0 AND (SELECT age(xid(pg_snapshot_xmax(%(base)s::pg_snapshot))))"
            f" OR {xmin} = ANY(ARRAY(SELECT xid(x) FROM pg_snapshot_xip(%(base)s::pg_snapshot) x)))")


# Which server, database and tables a snapshot belongs to (epoch: no TimeZone or DateStyle in it).
SERVER = ("concat_ws(' ', extract(epoch FROM pg_postmaster_start_time()),"
          " (SELECT oid FROM pg_database WHERE datname = current_database()),"
          " 'chatbot.users'::regclass::oid, 'chatbot.sessions'::regclass::oid, 'chatbot.messages'::regclass::oid)")
# True when the snapshot %(base)s is recent enough for _since (xids only go forward, fewer than FAR since).
RECENT = (f"pg_snapshot_xmax(pg_current_snapshot())::text::numeric BETWEEN"
          f" pg_snapshot_xmax(%(base)s::pg_snapshot)::text::numeric"
          f" AND pg_snapshot_xmin(%(base)s::pg_snapshot)::text::numeric + {FAR}")

# The nothing-new check: NULL when nothing changed since the baseline, else what did (a few words).
PROBE = f"""
    SELECT CASE
        WHEN {SERVER} IS DISTINCT FROM %(server)s THEN 'another server, database or tables'
        WHEN pg_current_snapshot()::text = %(base)s THEN NULL
        WHEN NOT ({RECENT}) THEN 'the last sync is too many transactions ago'
        WHEN (SELECT coalesce(max(id), 0) FROM chatbot.messages) > %(last_id)s THEN 'new messages'
        WHEN NOT (SELECT count(*) = %(users)s AND count(*) FILTER (WHERE {_since('xmin')}) = 0
                  FROM chatbot.users) THEN 'users changed'
        WHEN NOT (SELECT count(*) = %(sessions)s AND count(*) FILTER (WHERE {_since('xmin')}) = 0
                  FROM chatbot.sessions) THEN 'sessions changed'
        WHEN NOT (SELECT count(*) = %(messages)s AND count(*) FILTER (WHERE {_since('xmin')}) = 0
                  FROM chatbot.messages) THEN 'messages changed'
    END"""

# First statement of a run's snapshot: S itself, where it is, the counts in it, and whether the baseline's
# xmin test may narrow the comparison (the same server and recent enough).
SNAPSHOT = f"""
    SELECT pg_current_snapshot()::text, {SERVER},
           (SELECT count(*) FROM chatbot.users), (SELECT count(*) FROM chatbot.sessions),
           (SELECT count(*) FROM chatbot.messages),
           coalesce({SERVER} = %(server)s AND {RECENT}, false)"""

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

# The sessions whose conversation_context is written, with their own columns; DuckDB adds the summaries.
SESSIONS_COPY = """
    COPY (
        SELECT s.session_id, u.phone_number, s.turn_id, s.user_profile, s.state, s.qualification_score,
               s.created_at, s.updated_at
        FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id
        WHERE u.consent AND (%(every_session)s OR s.updated_at > %(since)s OR u.updated_at > %(since)s
           OR s.session_id = ANY(%(sessions)s::text[])
           OR s.id IN (SELECT m.session_id FROM chatbot.messages m
                       WHERE (m.id > %(after)s AND m.id <= %(upto)s) OR m.id = ANY(%(ids)s::bigint[])))
    ) TO STDOUT (FORMAT csv)"""

# key_entities of the sessions DuckDB cannot derive exactly: jsonb keeps the last value of a repeated key,
# and ORDER BY id makes it the latest one.
ENTITIES_COPY = """
    COPY (
        SELECT s.session_id, jsonb_object_agg(e.key, e.value ORDER BY m.id)
        FROM chatbot.sessions s
        JOIN chatbot.messages m ON m.session_id = s.id
        CROSS JOIN LATERAL jsonb_each(m.entities) e
        WHERE s.session_id = ANY(%(sessions)s::text[]) AND m.id <= %(upto)s AND jsonb_typeof(m.entities) = 'object'
        GROUP BY s.session_id
    ) TO STDOUT (FORMAT csv)"""

# The key sets that tell what DuckDB may keep, and whether what it holds is current: rows still in
# PostgreSQL, of users who consent (keys; and the confidence and digest of the messages that may have changed).
MESSAGE_KEYS_COPY = f"""
    COPY (
        SELECT m.id, CASE WHEN c.maybe THEN m.confidence END, CASE WHEN c.maybe THEN {PG_DIGEST} END
        FROM chatbot.messages m
        JOIN chatbot.sessions s ON s.id = m.session_id
        JOIN chatbot.users u ON u.id = s.user_id
        CROSS JOIN LATERAL (SELECT NOT %(narrow)s OR {_since('m.xmin')} OR {_since('s.xmin')} OR {_since('u.xmin')}
                            AS maybe) c
        WHERE m.id <= %(upto)s AND u.consent
    ) TO STDOUT (FORMAT csv)"""
SESSION_KEYS_COPY = f"""
    COPY (
        SELECT s.session_id, u.phone_number, s.updated_at, %(narrow)s AND ({_since('s.xmin')} OR {_since('u.xmin')})
        FROM chatbot.sessions s JOIN chatbot.users u ON u.id = s.user_id WHERE u.consent
    ) TO STDOUT (FORMAT csv)"""

MESSAGE_COLUMNS = {
    "id": "BIGINT", "message_id": "VARCHAR", "session_id": "VARCHAR", "phone_number": "VARCHAR",
    "role": "VARCHAR", "content": "VARCHAR", "intent": "VARCHAR", "sentiment": "VARCHAR",
    "confidence": "DOUBLE", "entities": "JSON", "response_time_ms": "INTEGER", "created_at": "TIMESTAMPTZ"}
SESSION_COLUMNS = {
    "session_id": "VARCHAR", "phone_number": "VARCHAR", "turn_id": "INTEGER", "user_profile": "JSON",
    "state": "VARCHAR", "qualification_score": "DECIMAL(5,2)", "created_at": "TIMESTAMPTZ",
    "source_updated_at": "TIMESTAMPTZ"}
ENTITIES_COLUMNS = {"session_id": "VARCHAR", "key_entities": "JSON"}
MESSAGE_KEY_COLUMNS = {"id": "BIGINT", "confidence": "DOUBLE", "digest": "VARCHAR"}
SESSION_KEY_COLUMNS = {"session_id": "VARCHAR", "phone_number": "VARCHAR", "updated_at": "TIMESTAMPTZ",
                       "changed": "BOOLEAN"}


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
    # "unchanged": nothing changed since the last run (one query); "first": DuckDB was empty, everything
    # copied; "changes": compared what changed since the last run; "full": compared every row (no baseline)
    mode: str = "full"
    why: str | None = None  # what the nothing-new check found changed, when it ran and found something


@dataclass(frozen=True)
class _Baseline:
    server: str
    snapshot: str
    users: int
    sessions: int
    messages: int


@dataclass(frozen=True)
class _State:
    last_id: int
    last_updated: str | None
    empty: bool  # message_history, conversation_context and message_embeddings hold no row
    baseline: _Baseline | None
    has_baseline_table: bool


def _read_csv(columns: dict[str, str]) -> str:
    """A read_csv call for PostgreSQL's CSV: NULL is an empty unquoted field, "" an empty string."""
    spec = ", ".join(f"'{name}': '{typ}'" for name, typ in columns.items())  # our constants, not values
    return (f"read_csv(?, header = false, auto_detect = false, columns = {{{spec}}}, "
            f"quote = '\"', escape = '\"', allow_quoted_nulls = false)")


def _state(duck: duckdb.DuckDBPyConnection) -> _State:
    rows = dict((r[0], r[1:]) for r in duck.execute(
        "SELECT source, last_id, strftime(timezone('UTC', last_updated_at), '%Y-%m-%d %H:%M:%S.%f+00')"
        " FROM analytics_sync_state"
    ).fetchall())
    last_id = (rows.get("messages") or (0, None))[0] or 0
    last_updated = (rows.get("sessions") or (None, None))[1]
    empty = duck.execute("SELECT NOT EXISTS (SELECT 1 FROM message_history)"
                         " AND NOT EXISTS (SELECT 1 FROM conversation_context)"
                         " AND NOT EXISTS (SELECT 1 FROM message_embeddings)").fetchall()[0][0]
    has_table = bool(duck.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
                                  " AND schema_name = 'main' AND table_name = 'analytics_sync_baseline'"
                                  ).fetchall()[0][0])
    baseline = None
    if has_table:
        found = duck.execute("SELECT server, snapshot, users, sessions, messages FROM analytics_sync_baseline"
                             " WHERE id = 1 AND format = ?", [SYNC_FORMAT]).fetchall()
        baseline = _Baseline(*found[0]) if found else None
    return _State(last_id, last_updated, empty, baseline, has_table)


def _probe(pg: psycopg.Connection, state: _State, base: _Baseline, *, lock_timeout: float) -> str | None:
    """What changed in PostgreSQL since the baseline, or None when nothing did: one statement (with the
    transaction's lock_timeout in the same message; PostgreSQL runs the SET before it locks the tables)."""
    params = {"server": base.server, "base": base.snapshot, "last_id": state.last_id, "users": base.users,
              "sessions": base.sessions, "messages": base.messages, "ms": f"{lock_wait.timeout_ms(lock_timeout)}ms"}
    try:
        with pg.transaction(), psycopg.ClientCursor(pg) as cur:
            cur.execute("SET LOCAL lock_timeout = %(ms)s;" + PROBE, params)
            cur.nextset()
            return fetch_one(cur)[0]
    except psycopg.errors.LockNotAvailable:
        raise  # named by the caller
    except psycopg.Error as exc:  # e.g. an unmigrated database: one line, like the COPY below
        raise AnalyticsError(f"reading chatbot rows from PostgreSQL failed: {first_line(exc)}",
                             sqlstate=exc.sqlstate) from None


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
    """A path DuckDB's read_csv can read the rows of `query` from: a pipe that threads fill with the COPY's
    rows as PostgreSQL sends them. Nothing is written to disk.

    Two threads, so that PostgreSQL and DuckDB work at the same time: one takes the COPY's rows as they come
    (libpq hands over one row at a time) into chunks of PIPE_BATCH bytes, the other writes them to the pipe.
    DuckDB reads its input in buffers of megabytes and then works on one while reading nothing; the chunks
    waiting in between (at most BACKLOG bytes, in memory) keep PostgreSQL sending meanwhile (with the pipe
    alone, 64 KiB, it would wait: about 1.5 times slower at 200,000 messages).

    A PostgreSQL failure ends the pipe early and is raised here (even when DuckDB then fails on the truncated
    input: the cause comes first); a DuckDB failure closes the pipe, which stops and cancels the COPY.
    """
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # Linux; a smaller pipe elsewhere is fine
    failure: list[BaseException] = []
    reader_gone = threading.Event()  # then whatever psycopg raises while cancelling is not a failure of its own
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, BACKLOG // PIPE_BATCH))

    def hand_over(chunk: bytes | None) -> None:
        while True:
            if reader_gone.is_set():
                raise _ReaderGone
            try:
                chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                pass

    def take() -> None:  # PostgreSQL -> chunks
        try:
            with pg.cursor() as cur, cur.copy(query, params) as copy:
                batch = bytearray()
                for row in copy:
                    batch += row
                    if len(batch) >= PIPE_BATCH:
                        hand_over(bytes(batch))
                        batch.clear()
                hand_over(bytes(batch))
        except BaseException as exc:  # handed to the main thread
            if not reader_gone.is_set():
                failure.append(exc)
        finally:
            with contextlib.suppress(_ReaderGone):
                hand_over(None)  # end of input

    def give() -> None:  # chunks -> the pipe
        try:
            while (chunk := chunks.get()) is not None:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write_fd, view):]
                sent[0] += len(chunk)
        except BrokenPipeError:
            reader_gone.set()  # DuckDB stopped reading: take() stops at its next chunk, which ends the COPY
        except BaseException as exc:
            failure.append(exc)
            reader_gone.set()
        finally:
            os.close(write_fd)  # end of input for DuckDB

    threads = [threading.Thread(target=take, name="dbtool-sync-copy", daemon=True),
               threading.Thread(target=give, name="dbtool-sync-pipe", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield f"/dev/fd/{read_fd}"
    except BaseException:
        os.close(read_fd)  # a reader that stopped early: the next write fails and ends the COPY
        for thread in threads:
            thread.join()
        if failure:
            raise failure[0] from None
        raise
    os.close(read_fd)
    for thread in threads:
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
    When nothing changed in PostgreSQL since the last run, the run is one query and writes nothing.
    """
    t0 = time.perf_counter()
    step = on_step or (lambda _name: None)
    lock_wait_s = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
    try:
        state = _state(duck)
    except duckdb.Error as exc:
        raise duck_error("reading the sync watermarks failed", exc) from None
    why = None
    with lock_wait.naming_blockers(pg, lock_wait_s, command="analytics sync", schemas=["chatbot"],
                                   setting=lock_wait.DATA_SETTING, outcome="nothing copied"):
        if state.baseline is not None:
            why = _probe(pg, state, state.baseline, lock_timeout=lock_wait_s)
            if why is None:
                return SyncResult(0, 0, state.last_id, 0, time.perf_counter() - t0, mode="unchanged")
        horizon = _horizon(pg, wait=wait, lock_timeout=lock_wait_s)
        last_id = 0 if state.empty else state.last_id
        since = "-infinity" if state.last_updated is None else state.last_updated
        upto = max(horizon, state.last_id)
        base = state.baseline
        params: dict[str, object] = {
            "after": last_id, "upto": upto, "since": since, "ids": [], "sessions": [], "every_session": False,
            "server": base.server if base else None, "base": base.snapshot if base else "1:1:", "narrow": False}
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
                pg.execute("SET LOCAL work_mem = '64MB'")
                snapshot, server, users, sessions, messages, narrow = fetch_one(pg.execute(SNAPSHOT, params))
                params["narrow"] = narrow
                if narrow:  # every session and user changed since the baseline is known by its xmin
                    params["since"] = "infinity"
                elif state.last_updated is not None:
                    params["since"] = fetch_one(pg.execute("SELECT %s::timestamptz - %s::interval",
                                                           (state.last_updated, overlap)))[0]
                mode = "first" if state.empty else "changes" if narrow else "full"
                try:
                    done = _load(duck, feed, after=last_id, horizon=upto, step=step, first=state.empty,
                                 baseline=_Baseline(server, snapshot, users, sessions, messages)
                                 if state.has_baseline_table else None)
                except duckdb.Error as exc:
                    raise duck_error("loading DuckDB failed, nothing copied", exc) from None
        except psycopg.errors.LockNotAvailable:
            raise  # naming_blockers names who holds the lock
        except psycopg.Error as exc:
            raise AnalyticsError(f"reading chatbot rows from PostgreSQL failed, nothing copied: {first_line(exc)}",
                                 sqlstate=exc.sqlstate) from None
    return SyncResult(done.added, done.changed, upto, sent[0], time.perf_counter() - t0, done.removed,
                      done.updated, done.embeddings_dropped, mode, why)


@dataclass(frozen=True)
class _Loaded:
    added: int
    changed: int
    removed: int
    updated: int
    embeddings_dropped: int


def _load(duck: duckdb.DuckDBPyConnection, feed: Feed, *, after: int, horizon: int,
          step: Callable[[str], None], first: bool, baseline: _Baseline | None) -> _Loaded:
    """One DuckDB transaction (see the module docstring). first: DuckDB holds no row, so there is nothing to
    compare or delete, and every session is written."""
    with transaction(duck):
        stale: list[int] = []
        touched: list[str] = []
        updated = removed = 0
        if not first:
            stale, touched, updated = _compare(duck, feed, after=after, horizon=horizon)
        insert = "INSERT INTO" if first else "INSERT OR IGNORE INTO"  # the first: nothing to collide with
        with feed(MESSAGES_COPY, ids=stale) as source:
            written = duck.execute(
                f"{insert} message_history BY NAME SELECT * FROM {_read_csv(MESSAGE_COLUMNS)}",
                [source]).fetchall()[0][0]
        dropped = _follow_messages(duck) if stale else 0
        step("messages")
        if not first:
            removed += _remove_gone_messages(duck, horizon=horizon)
        changed = _contexts(duck, feed, stale=stale, touched=touched, every=first)
        step("sessions")
        if not first:
            removed += _remove_gone_contexts(duck)
        step("deletions")
        _watermarks(duck, horizon=horizon, written=written, changed=changed, baseline=baseline)
        step("watermark")
        for table in ("sync_stale", "sync_message_keys", "sync_session_keys"):
            duck.execute(f"DROP TABLE IF EXISTS {table}")  # our constants
    return _Loaded(written - updated, changed, removed, updated, dropped)


def _compare(duck: duckdb.DuckDBPyConnection, feed: Feed, *, after: int, horizon: int
             ) -> tuple[list[int], list[str], int]:
    """The key sets, read into DuckDB: (ids to copy again, sessions out of date, message rows deleted to be
    rewritten). Digests are compared where PostgreSQL sent one (the messages that may have changed)."""
    with feed(MESSAGE_KEYS_COPY) as source:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_message_keys AS "
                     f"SELECT * FROM {_read_csv(MESSAGE_KEY_COLUMNS)}", [source])
    with feed(SESSION_KEYS_COPY) as source:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_session_keys AS "
                     f"SELECT * FROM {_read_csv(SESSION_KEY_COLUMNS)}", [source])
    # Messages DuckDB holds that differ from PostgreSQL's (held), and those up to the watermark it lacks.
    # The digest is computed only where PostgreSQL sent one (CASE evaluates a branch for its rows only).
    duck.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_stale AS
        SELECT k.id, h.id IS NOT NULL AS held, h.session_id, h.content
        FROM sync_message_keys k LEFT JOIN message_history h ON h.id = k.id
        WHERE CASE WHEN h.id IS NULL THEN k.id <= ?
                   WHEN k.digest IS NULL THEN false
                   ELSE h.confidence IS DISTINCT FROM k.confidence OR {DUCK_DIGEST} <> k.digest END
        """, [after])  # DUCK_DIGEST: our constant
    stale = [r[0] for r in duck.execute("SELECT id FROM sync_stale ORDER BY id").fetchall()]
    # Sessions whose context is out of date: missing, another updated_at or phone number, changed since the
    # baseline, or a message of theirs changed (in its old session) or gone. Those of new and changed
    # messages SESSIONS_COPY adds.
    touched = [r[0] for r in duck.execute("""
        SELECT session_id FROM sync_stale WHERE held
        UNION SELECT h.session_id FROM message_history h
              WHERE h.id <= ? AND NOT EXISTS (SELECT 1 FROM sync_message_keys k WHERE k.id = h.id)
        UNION SELECT k.session_id FROM sync_session_keys k
              LEFT JOIN conversation_context c ON c.session_id = k.session_id
              WHERE k.changed OR c.session_id IS NULL OR c.phone_number IS DISTINCT FROM k.phone_number
                 OR c.source_updated_at IS DISTINCT FROM k.updated_at
        ORDER BY 1""", [horizon]).fetchall()]
    updated = duck.execute("DELETE FROM message_history WHERE id IN (SELECT id FROM sync_stale WHERE held)"
                           ).fetchall()[0][0]
    return stale, touched, updated


def _contexts(duck: duckdb.DuckDBPyConnection, feed: Feed, *, stale: list[int], touched: list[str],
              every: bool) -> int:
    """conversation_context rows of the sessions SESSIONS_COPY selects, their summaries made from
    message_history (which holds by now exactly PostgreSQL's messages of these sessions, up to the horizon);
    rows written (only those new or different)."""
    with feed(SESSIONS_COPY, ids=stale, sessions=touched, every_session=every) as source:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE sync_sessions AS SELECT * FROM {_read_csv(SESSION_COLUMNS)}",
                     [source])
    # key_entities: '{}' without an object among the entities; the latest object when its keys are every
    # key the session's objects have (each key's latest value is then its own); else NULL: PostgreSQL's.
    duck.execute("""
        CREATE OR REPLACE TEMP TABLE sync_summaries AS
        WITH m AS (
            SELECT h.session_id, h.id, h.role, h.intent, h.entities, json_type(h.entities) = 'OBJECT' AS obj
            FROM message_history h WHERE h.session_id IN (SELECT session_id FROM sync_sessions)),
        st AS (
            SELECT session_id, count(*) AS n, count(*) FILTER (WHERE role = 'user') AS n_user,
                   string_agg(DISTINCT intent, ', ' ORDER BY intent) AS intents,
                   arg_max(entities, id) FILTER (WHERE obj) AS latest, count(*) FILTER (WHERE obj) AS objects
            FROM m GROUP BY session_id),
        k AS (
            SELECT session_id, count(DISTINCT key) AS keys
            FROM (SELECT session_id, unnest(json_keys(entities)) AS key FROM m WHERE obj) GROUP BY session_id)
        SELECT s.session_id,
               format('{} messages ({} from the user); intents: {}', coalesce(st.n, 0), coalesce(st.n_user, 0),
                      coalesce(st.intents, 'none')) AS summary,
               CASE WHEN coalesce(st.objects, 0) = 0 THEN '{}'::JSON
                    WHEN len(json_keys(st.latest)) = coalesce(k.keys, 0) THEN st.latest END AS key_entities
        FROM sync_sessions s LEFT JOIN st USING (session_id) LEFT JOIN k USING (session_id)""")
    mixed = [r[0] for r in duck.execute(
        "SELECT session_id FROM sync_summaries WHERE key_entities IS NULL ORDER BY 1").fetchall()]
    if mixed:
        with feed(ENTITIES_COPY, sessions=mixed) as source:
            duck.execute(f"""
                UPDATE sync_summaries x SET key_entities = p.key_entities
                FROM {_read_csv(ENTITIES_COLUMNS)} p WHERE p.session_id = x.session_id""", [source])
    # Only sessions that are new or differ from what DuckDB has (an EXCEPT over every column).
    duck.execute("""
        CREATE OR REPLACE TEMP TABLE sync_context AS
        SELECT s.session_id, s.phone_number, s.turn_id, x.summary, coalesce(x.key_entities, '{}'::JSON),
               s.user_profile, s.state, s.qualification_score, s.created_at, s.source_updated_at
        FROM sync_sessions s JOIN sync_summaries x USING (session_id)
        EXCEPT SELECT * FROM conversation_context""")
    changed = duck.execute("SELECT count(*) FROM sync_context").fetchall()[0][0]
    duck.execute("DELETE FROM conversation_context WHERE session_id IN (SELECT session_id FROM sync_context)")
    duck.execute("INSERT INTO conversation_context SELECT * FROM sync_context")
    for table in ("sync_context", "sync_summaries", "sync_sessions"):
        duck.execute(f"DROP TABLE {table}")  # our constants
    return changed


def _watermarks(duck: duckdb.DuckDBPyConnection, *, horizon: int, written: int, changed: int,
                baseline: _Baseline | None) -> None:
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
    if baseline is not None:
        duck.execute("""
            INSERT OR REPLACE INTO analytics_sync_baseline
                (id, format, server, snapshot, users, sessions, messages, synced_at)
            VALUES (1, ?, ?, ?, ?, ?, ?, current_timestamp)""",
                     [SYNC_FORMAT, baseline.server, baseline.snapshot, baseline.users, baseline.sessions,
                      baseline.messages])


def forget_baseline(duck: duckdb.DuckDBPyConnection) -> None:
    """The next sync compares every row (DuckDB's rows were changed by something other than a sync)."""
    try:
        duck.execute("DELETE FROM analytics_sync_baseline")
    except duckdb.CatalogException:
        pass  # a file from before the baseline: there is none


def _follow_messages(duck: duckdb.DuckDBPyConnection) -> int:
    """Embeddings of the messages just rewritten: dropped where the text changed (the vector, and the copy of
    the text, were made from the old one), else given the message's phone number, session and wamid;
    embeddings dropped."""
    dropped = [r[0] for r in duck.execute("""
        DELETE FROM message_embeddings WHERE id IN (
            SELECT s.id FROM sync_stale s JOIN message_history h ON h.id = s.id
            WHERE s.held AND h.content IS DISTINCT FROM s.content) RETURNING id""").fetchall()]
    moved = [r[0] for r in duck.execute("""
        UPDATE message_embeddings e SET phone_number = h.phone_number, session_id = h.session_id,
                                        message_id = h.message_id
        FROM message_history h, sync_stale s
        WHERE s.held AND s.id = e.id AND h.id = e.id
          AND (e.phone_number <> h.phone_number OR e.session_id <> h.session_id
               OR e.message_id IS DISTINCT FROM h.message_id) RETURNING e.id""").fetchall()]
    if dropped or moved:
        bump_version(duck, changed=dropped + moved)  # the search sidecar loses those vectors, or follows them
    return len(dropped)


def _remove_gone_messages(duck: duckdb.DuckDBPyConnection, *, horizon: int) -> int:
    """Delete the messages and embeddings whose id PostgreSQL's snapshot (the key set _compare read) no
    longer has (up to the horizon); rows deleted."""
    removed = {table: duck.execute(
        f"DELETE FROM {table} t WHERE t.id <= ? AND NOT EXISTS "  # our constants, not values
        f"(SELECT 1 FROM sync_message_keys k WHERE k.id = t.id)", [horizon]).fetchall()[0][0]
        for table in ("message_history", "message_embeddings")}
    if removed["message_embeddings"]:
        bump_version(duck, deleted_only=True)  # the search sidecar loses the deleted messages' vectors
    return sum(removed.values())


def _remove_gone_contexts(duck: duckdb.DuckDBPyConnection) -> int:
    return duck.execute(
        "DELETE FROM conversation_context t WHERE NOT EXISTS "
        "(SELECT 1 FROM sync_session_keys k WHERE k.session_id = t.session_id)").fetchall()[0][0]
