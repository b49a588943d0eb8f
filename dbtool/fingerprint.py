"""Checksums of applied sql/ files, so `validate` can report files edited after apply.

yoyo identifies a migration by its id only; we record what each file said when it ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

# v1: UTF-8 BOM stripped, CRLF/CR -> LF, then SHA-256 of the bytes.
# v2: as v1, then SQL comments (-- and /* */, outside strings and dollar quotes) removed: a
#     comment edit changes nothing PostgreSQL runs, so it is no drift. A function body's
#     comments sit inside its dollar quotes and still count.
ALGORITHM = "sha256-v2"

BOOKKEEPING_DDL = """
CREATE SCHEMA IF NOT EXISTS dbtool;
CREATE TABLE IF NOT EXISTS dbtool.applied_file (
    migration_id text NOT NULL,
    module text NOT NULL,
    file text NOT NULL,
    checksum text NOT NULL,
    algorithm text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, file)
);
-- Checksums are not secret: let read-only roles run `dbtool validate`.
GRANT USAGE ON SCHEMA dbtool TO PUBLIC;
GRANT SELECT ON dbtool.applied_file TO PUBLIC;
"""


def normalise(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def without_comments(text: str) -> str:
    import sqlparse.tokens as T  # here: only checksums need the lexer
    from sqlparse.lexer import Lexer

    return "".join(value for ttype, value in Lexer.get_default_instance().get_tokens(text)
                   if ttype not in T.Comment)


def checksum(data: bytes, algorithm: str = ALGORITHM) -> str:
    text = normalise(data)
    if algorithm == "sha256-v1":
        return hashlib.sha256(text).hexdigest()
    if algorithm == "sha256-v2":
        return hashlib.sha256(without_comments(text.decode("utf-8", "surrogateescape"))
                              .encode("utf-8", "surrogateescape")).hexdigest()
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


KNOWN = ("sha256-v1", "sha256-v2")


def file_checksum(path: Path, algorithm: str = ALGORITHM) -> str:
    if _memo is not None:  # inside files_read_once()
        key = (str(path), algorithm)
        if key not in _memo:
            _memo[key] = checksum(path.read_bytes(), algorithm)
        return _memo[key]
    return checksum(path.read_bytes(), algorithm)


_memo: dict[tuple[str, str], str] | None = None


@contextmanager
def files_read_once() -> Iterator[None]:
    """Inside, each file's checksum is computed once (all threads): a fleet run checks many databases against the
    same files, and lexing them is most of what validate and status do on the client."""
    global _memo
    before, _memo = _memo, {} if _memo is None else _memo
    try:
        yield
    finally:
        _memo = before


# Who ran each migration. yoyo's _yoyo_log records the OS user and host name of an apply or rollback, not the
# process: dbtool adds one row per _yoyo_log row it writes (same id), with the host and pid of the run holding the
# migration lock (its application_name, lock.application_name()), written by the migrating session in the
# migration's own transaction. `dbtool history` joins the two; a yoyo row without one (yoyo itself, an older
# dbtool) shows "unknown".
MIGRATION_LOG_DDL = """
CREATE TABLE IF NOT EXISTS dbtool.migration_log (
    yoyo_log_id text PRIMARY KEY,
    migration_id text NOT NULL,
    module text NOT NULL,
    operation text NOT NULL,
    command text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    role text NOT NULL DEFAULT current_user,
    logged_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE dbtool.migration_log IS
    'Who ran each migration: host/pid of the dbtool run holding the lock; joins _yoyo_log on id';
GRANT USAGE ON SCHEMA dbtool TO PUBLIC;
GRANT SELECT ON dbtool.migration_log TO PUBLIC;
"""

MIGRATION_LOG_SQL = """
INSERT INTO dbtool.migration_log (yoyo_log_id, migration_id, module, operation, command, host, pid)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def record_run(conn: psycopg.Connection, *, yoyo_log_id: str, migration_id: str, module: str, operation: str,
               command: str, host: str, pid: int) -> None:
    """Record who wrote a _yoyo_log row, in the caller's transaction (the table is created when missing)."""
    from .fetch import fetch_one

    schema, table = fetch_one(conn.execute("SELECT to_regnamespace('dbtool'), to_regclass('dbtool.migration_log')"))
    if schema is None:  # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists
        conn.execute("CREATE SCHEMA IF NOT EXISTS dbtool")
    if table is None:
        conn.execute(MIGRATION_LOG_DDL)
    conn.execute(MIGRATION_LOG_SQL, (yoyo_log_id, migration_id, module, operation, command, host, pid))
