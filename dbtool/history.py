"""What this database says was applied: yoyo's records and dbtool's file checksums; and what ran
when, by whom: yoyo's log joined to dbtool.migration_log (`dbtool history`).

`status` and `validate` both read it here, so they never disagree on what is pending or
which files changed since they were applied. Read-only; a table this role may not read
counts as unreadable, not as empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from . import paths
from .config import Target
from .errors import RefusedError
from .fetch import fetch_one
from .fingerprint import ALGORITHM, KNOWN, file_checksum

YOYO_SQL = "SELECT migration_id, applied_at_utc FROM _yoyo_migration"
FILES_SQL = "SELECT migration_id, module, file, checksum, algorithm FROM dbtool.applied_file ORDER BY 1, 3"


@dataclass
class FileRecord:
    migration_id: str
    module: str
    file: str  # relative to sql/
    checksum: str
    algorithm: str

    @property
    def problem(self) -> str | None:
        """'file_missing', 'edited', 'unchecked' or None when the file is as applied.

        A record of an older algorithm is checked with that algorithm: equal means unchanged. v1
        counted comments, so a v1 mismatch may be a comment edit only: 'unchecked', not 'edited'.
        """
        path = paths.sql_dir() / self.file
        if not path.is_file():  # gone, or a FIFO or folder in its place (reading a FIFO would wait forever)
            return "file_missing"
        if self.algorithm not in KNOWN:
            return "unchecked"
        if file_checksum(path, self.algorithm) == self.checksum:
            return None
        return "edited" if self.algorithm == ALGORITHM else "unchecked"


@dataclass
class History:
    applied: dict[str, datetime | None] = field(default_factory=dict)  # migration id -> when (None: unknown)
    files: list[FileRecord] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    _changed: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    def changed_files(self, migration_id: str) -> list[str]:
        if self._changed is None:  # each file lexed once, not once per migration asked about
            self._changed = {}
            for r in self.files:
                if r.problem in ("file_missing", "edited"):
                    self._changed.setdefault(r.migration_id, []).append(f"sql/{r.file}")
        return list(self._changed.get(migration_id, []))


def _rows(conn: psycopg.Connection, table: str, query: str | sql.Composed, params=None,
          unreadable: list[str] | None = None) -> list[tuple] | None:
    """The rows of `query` over `table`; None when there is no such table, or when this role may not read it
    (then `table` is added to `unreadable`)."""
    if not fetch_one(conn.execute("SELECT to_regclass(%s)", (table,)))[0]:
        return None
    try:
        with conn.transaction():
            return conn.execute(query, params).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        if unreadable is not None:
            unreadable.append(table)
        return None


def read_history(conn: psycopg.Connection) -> History:
    history = History()
    applied = _rows(conn, "_yoyo_migration", YOYO_SQL, unreadable=history.unreadable)
    history.applied.update(applied or [])
    files = _rows(conn, "dbtool.applied_file", FILES_SQL, unreadable=history.unreadable)
    history.files = [FileRecord(*r) for r in files or []]
    for r in history.files:  # a database whose yoyo records this role cannot read
        history.applied.setdefault(r.migration_id, None)
    return history


# -- what ran and when: yoyo's log, with who ran it (dbtool.migration_log) ----------------------

@dataclass
class LogEntry:
    at: datetime  # UTC, as yoyo writes it
    operation: str  # yoyo's: apply, rollback, mark, unmark
    migration_id: str
    module: str
    username: str | None  # yoyo's: the OS user and host name of the run
    hostname: str | None
    command: str | None  # dbtool's: the command, and the host and pid of the run holding the migration lock
    host: str | None
    pid: int | None
    role: str | None  # the database role that ran it

    @property
    def by(self) -> str:
        """host/pid of the dbtool run that holds the lock; "unknown" for a row written without it (yoyo
        itself, a dbtool older than dbtool.migration_log)."""
        return f"{self.host}/{self.pid}" if self.host is not None else "unknown"

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat() + "Z", "operation": self.operation, "migration_id": self.migration_id,
                "module": self.module, "by": self.by, "host": self.host, "pid": self.pid, "command": self.command,
                "role": self.role, "username": self.username, "hostname": self.hostname}


# yoyo's log, newest first, joined to dbtool's on yoyo's row id. A row's module: dbtool's record, else the
# migrations/ folder holding its file, else its id's first part (crm_0001_initial: crm).
LOG_SQL = """
SELECT y.created_at_utc, y.operation, coalesce(y.migration_id, '?'),
       coalesce(d.module, f.module, split_part(y.migration_id, '_', 1)), y.username, y.hostname, {columns}
FROM _yoyo_log y {join}
LEFT JOIN unnest(%(ids)s::text[], %(modules)s::text[]) AS f(migration_id, module) ON f.migration_id = y.migration_id
WHERE %(only)s::text[] IS NULL
   OR coalesce(d.module, f.module, split_part(y.migration_id, '_', 1)) = ANY(%(only)s::text[])
ORDER BY y.created_at_utc DESC, y.id DESC
LIMIT %(limit)s
"""
JOINED = ("d.command, d.host, d.pid, d.role", "LEFT JOIN dbtool.migration_log d ON d.yoyo_log_id = y.id")
ALONE = ("NULL, NULL, NULL::int, NULL", "CROSS JOIN (SELECT NULL::text AS module) d")


def read_log(conn: psycopg.Connection, modules: list[str] | None, limit: int | None,
             on_disk: dict[str, str]) -> tuple[list[LogEntry], list[str]]:
    """yoyo's log, newest first (the latest `limit`), of `modules` (None: all, gone ones included), and the tables
    this role may not read. on_disk: {migration id: module} of the files in migrations/."""
    unreadable: list[str] = []
    who = _rows(conn, "dbtool.migration_log", "SELECT 1 FROM dbtool.migration_log LIMIT 0", unreadable=unreadable)
    columns, join = JOINED if who is not None else ALONE
    params = {"ids": list(on_disk), "modules": list(on_disk.values()), "only": modules, "limit": limit}
    rows = _rows(conn, "_yoyo_log", sql.SQL(LOG_SQL).format(columns=sql.SQL(columns), join=sql.SQL(join)), params,
                 unreadable=unreadable)
    return [LogEntry(*r) for r in rows or []], unreadable


@contextmanager
def reading(target: Target, command: str, schemas: list[str]) -> Iterator[psycopg.Connection]:
    """A connection of a read-only command: it waits at most DBTOOL_READ_LOCK_TIMEOUT for a table lock, then
    stops naming who holds it (never without end behind a lock on yoyo's tables)."""
    from . import lock_wait
    from .lock import application_name

    with target.connect(application_name=application_name(command)) as conn:
        wait = lock_wait.seconds()
        lock_wait.limit_session(conn, wait)
        with lock_wait.naming_blockers(conn, wait, command=command, schemas=schemas):
            yield conn


def refuse_unreadable(unreadable: list[str], what: str) -> None:
    if unreadable:
        raise RefusedError(f"the server refused this role: permission denied to read {', '.join(unreadable)} "
                           f"({what})")


def log(target: Target, modules: list[str] | None, limit: int | None = None) -> list[LogEntry]:
    """`dbtool history`: read-only, newest first; modules None: every module, those no longer on disk too."""
    from .revisions import on_disk

    with reading(target, "history", modules or paths.modules()) as conn:
        entries, unreadable = read_log(conn, modules, limit, on_disk())
    refuse_unreadable(unreadable, "which migrations ran, and who ran them")
    return entries
