"""The migration lock: a session-level advisory lock on a connection of its own.

Unlike yoyo's lock row it dies with the process (even on kill -9), and its holder is
visible in pg_stat_activity through application_name.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psycopg

from .config import Target
from .errors import DbtoolError
from .fetch import fetch_one

# Two-int advisory key (pg_locks: classid, objid, objsubid = 2): 'dbtl', 1.
LOCK_CLASS, LOCK_OBJ = 0x6462746C, 1

HOLDER_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(host(a.client_addr), 'local'),
       date_trunc('second', now() - a.backend_start)::text
FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 AND l.database = (
      SELECT oid FROM pg_database WHERE datname = current_database())
"""


class LockTimeout(DbtoolError):
    pass


class LockLost(DbtoolError):
    pass


class Interrupted(DbtoolError):
    """A fleet run was interrupted (Ctrl-C): this target stopped before its next migration."""

    exit_code = 130


# A fleet run (dbtool/fleet) runs each target in a worker thread; after Ctrl-C it sets the event it gave that thread
# here, and the thread stops at the next point where stopping leaves nothing half done: between two migrations
# (BlockerWatch.check_held), or while it still waits for the migration lock.
_stop = threading.local()


@contextmanager
def stop_when(event: threading.Event):
    """In this thread, inside: once `event` is set, stop (Interrupted) before the next migration."""
    before = getattr(_stop, "event", None)
    _stop.event = event
    try:
        yield
    finally:
        _stop.event = before


def check_stop(where: str = "before its next migration") -> None:
    event = getattr(_stop, "event", None)
    if event is not None and event.is_set():
        raise Interrupted(f"interrupted (Ctrl-C): stopped {where}; what was applied stays applied")


HOST_MAX = 20  # characters of the host name in application_name


def this_host() -> str:
    """This machine's short host name, at most HOST_MAX characters. A longer one keeps its start and a digest of
    the whole (`webserver-pr~1a2b3c4d`): two machines whose names differ only after 20 characters must not read
    as one, or a run on one would take the other's live sessions for stale ones."""
    name = socket.gethostname().split(".")[0]
    if len(name) <= HOST_MAX:
        return name
    return f"{name[:HOST_MAX - 9]}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def application_name(command: str) -> str:
    """`dbtool <command> host=<host> pid=<pid>`, within PostgreSQL's 63 bytes (NAMEDATALEN - 1): a long command is
    shortened, never the host or the pid, which tell whether the session's process is gone."""
    tail = f" host={this_host()} pid={os.getpid()}"
    head = f"dbtool {command}"
    room = 63 - len(tail.encode())
    while len(head.encode()) > room:
        head = head[:-1]
    return head.rstrip() + tail


# What application_name() writes: the command may be several words (`dbtool jobs purge ...`, `dbtool analytics
# sync ...`); the host and pid are the last two words.
APP_NAME = re.compile(r"^dbtool (\S.*?) host=(\S*) pid=(\d+)$")


def process_gone(pid: int) -> bool:
    """No process `pid` on this machine (a zombie, killed and not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


# Client sessions of this database other than the asking one.
SESSIONS_SQL = """
SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), 'local'), coalesce(state, '?'),
       left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 120),
       date_trunc('second', now() - coalesce(query_start, backend_start))::text
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
ORDER BY pid
"""


@dataclass(frozen=True)
class Session:
    pid: int
    app: str
    addr: str
    state: str
    query: str
    age: str

    @property
    def dbtool(self) -> tuple[str, int] | None:
        """(host, pid) of the dbtool process this session belongs to, from its application_name."""
        return dbtool_owner(self.app)

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.app or '?'}, from {self.addr}, {self.state} for {self.age}: {self.query})"


def dbtool_owner(app: str) -> tuple[str, int] | None:
    """(host, pid) of the dbtool process an application_name names (any command, one word or several)."""
    m = APP_NAME.match(app)
    return (m.group(2), int(m.group(3))) if m else None


def gone_owner(app: str) -> int | None:
    """The pid of the dbtool process on this machine that `app` names, when that process is gone (not ours)."""
    owner = dbtool_owner(app)
    if owner and owner[0] == this_host() and owner[1] != os.getpid() and process_gone(owner[1]):
        return owner[1]
    return None


def sessions(conn: psycopg.Connection) -> list[Session]:
    return [Session(*row) for row in conn.execute(SESSIONS_SQL).fetchall()]


def stale_sessions(conn: psycopg.Connection) -> list[Session]:
    """dbtool sessions whose process on this machine is gone (kill -9): the server runs their last
    statement to its end, holding its locks, before it notices."""
    return [s for s in sessions(conn) if gone_owner(s.app) is not None]


def end_stale_sessions(conn: psycopg.Connection, *, terminate: bool, timeout: float,
                       say: Callable[[str], None]) -> None:
    """Before changing anything: end (pg_terminate_backend) each dbtool session whose process on this machine
    is gone, saying so; with terminate=False, or when this role may not end it, wait for it, naming it."""
    started, told, refused = time.monotonic(), set(), set()
    while stale := stale_sessions(conn):
        for s in stale:
            gone = f"its process, pid {s.dbtool[1] if s.dbtool else '?'} on this machine, is gone"
            if terminate and s.pid not in refused:
                try:
                    ended = fetch_one(conn.execute("SELECT pg_terminate_backend(%s)", (s.pid,)))[0]
                except psycopg.errors.InsufficientPrivilege:
                    ended = False
                if not ended and not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                                  (s.pid,)).fetchone():
                    continue  # it ended by itself meanwhile
                if not ended:
                    refused.add(s.pid)
                elif s.pid not in told:
                    say(f"terminated the stale session {s}: {gone}")
                    told.add(s.pid)
            if s.pid not in told:
                why = " (this role may not terminate it)" if s.pid in refused else " (--no-terminate-stale)"
                say(f"waiting up to {timeout:g}s for the stale session {s}: {gone}{why}")
                told.add(s.pid)
        if time.monotonic() - started >= timeout:
            left = "; ".join(str(s) for s in stale)
            raise LockTimeout(f"gave up after {timeout:g}s waiting for stale dbtool session(s) whose process is "
                              f"gone: {left}; nothing was changed (end it: SELECT pg_terminate_backend(pid))")
        time.sleep(0.05 if terminate and not refused else 0.2)


def describe_holder(row) -> str:
    if not row:
        return "another session"
    pid, app, addr, age = row
    return f"pid {pid} ({app}, from {addr}, connected {age} ago)"


@contextmanager
def migration_lock(target: Target, command: str, timeout: float, say: Callable[[str], None]):
    conn = target.connect(application_name=application_name(command), autocommit=True)
    try:
        started, told = time.monotonic(), object()
        while not fetch_one(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ)))[0]:
            check_stop("while waiting for the migration lock, before any migration")
            row = conn.execute(HOLDER_SQL, (LOCK_CLASS, LOCK_OBJ)).fetchone()
            holder = describe_holder(row)
            if (row[0] if row else None) != told:  # a new holder, not the same one a second older
                say(f"waiting up to {timeout:g}s for the migration lock held by {holder}")
                told = row[0] if row else None
            if time.monotonic() - started >= timeout:
                raise LockTimeout(f"gave up after {timeout:g}s waiting for the migration lock held by {holder}")
            time.sleep(0.2)
        yield conn
    finally:
        conn.close()  # closing the session releases the lock


# Who blocks our sessions in this database (pg_stat_activity is cluster-wide: a fleet run's sessions in the other
# databases of the same server carry the same application_name).
BLOCKERS_SQL = """
SELECT DISTINCT b.pid, coalesce(nullif(b.application_name, ''), '?'), b.state,
       left(regexp_replace(b.query, '\\s+', ' ', 'g'), 120)
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE w.application_name = %s AND w.pid <> pg_backend_pid() AND b.application_name <> %s
  AND w.datname = current_database()
"""


class BlockerWatch(threading.Thread):
    """Polls, on the lock's idle connection, who blocks our migration sessions.

    When a statement then fails on lock_timeout the error can name the blocker: by
    that time the wait is over and pg_blocking_pids() has nothing left to say.
    """

    def __init__(self, conn, app_name: str, interval: float = 0.1):
        super().__init__(daemon=True)
        self.conn, self.app_name, self.interval = conn, app_name, interval
        self.blockers: list[tuple] = []
        self.lost = False  # the lock's connection broke: the lock is gone with it
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                rows = self.conn.execute(BLOCKERS_SQL, (self.app_name, self.app_name)).fetchall()
            except Exception:  # never raise into a migration: say it through `lost`
                self.lost = self.conn.closed or self.conn.broken
                return
            if rows:
                self.blockers = rows

    def check_held(self) -> None:
        """Between migrations: stop rather than go on without the lock (or after a fleet run's Ctrl-C)."""
        check_stop()
        if self.lost or self.conn.closed or self.conn.broken:
            raise LockLost("the connection holding the migration lock was lost; stopped before the next migration "
                           "(what was applied stays applied)")

    def describe(self) -> str:
        if not self.blockers:
            return "blocked by another session (not seen in time)"
        return "blocked by " + "; ".join(f"pid {pid} ({app}, {state}): {query}"
                                         for pid, app, state, query in self.blockers)

    def __enter__(self) -> "BlockerWatch":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
