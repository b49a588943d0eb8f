"""Building blocks for migrations/ files: apply sql/ files in order, record checksums.

A migration file says which sql/<module>/ files it applies; this module runs them
statement by statement (so an error names the file and line) inside the migration's
transaction, and records each file's checksum in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlparse

from .errors import MigrationError
from .fingerprint import ALGORITHM, BOOKKEEPING_DDL, checksum
from .paths import SQL_DIR

RECORD_SQL = """
INSERT INTO dbtool.applied_file (migration_id, module, file, checksum, algorithm)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (migration_id, file) DO UPDATE
SET checksum = EXCLUDED.checksum, algorithm = EXCLUDED.algorithm, applied_at = now()
"""


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the statement's first character in its file


def read_sql(path: Path, migration_id: str) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MigrationError(f"{_rel(path)}: file not found (needed by migration {migration_id})") from None
    except OSError as exc:
        raise MigrationError(f"{_rel(path)}: cannot read: {exc.strerror} (migration {migration_id})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{_rel(path)}: not UTF-8 at byte {exc.start} (migration {migration_id})") from None
    return data, text


def split_statements(text: str) -> list[Statement]:
    """Split like psql does (quotes, dollar quotes, comments respected), keeping line numbers.

    Each statement starts at its first real token, so the server's error position
    counts from there and leading comments never shift the reported line.
    """
    out, offset = [], 0
    for stmt in sqlparse.parse(text):
        chunk = str(stmt)
        lead = 0
        for tok in stmt.flatten():
            if not (tok.is_whitespace or tok.ttype in sqlparse.tokens.Comment):
                body = chunk[lead:].rstrip()
                out.append(Statement(body, text.count("\n", 0, offset + lead) + 1))
                break
            lead += len(str(tok))
        offset += len(chunk)
    return out


def describe_error(path: Path, stmt: Statement, exc: psycopg.Error, migration_id: str) -> str:
    diag = exc.diag
    line = stmt.line
    if diag.statement_position:
        line += stmt.text.count("\n", 0, int(diag.statement_position) - 1)
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{_rel(path)}:{line}: {message} (migration {migration_id}; nothing was applied)"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(SQL_DIR.parent))
    except ValueError:
        return str(path)


class ApplyFiles:
    """A yoyo step (callable on the DB-API connection) that applies sql/ files."""

    def __init__(self, migration_file: str, files: tuple[str, ...]):
        mpath = Path(migration_file)
        self.migration_id = mpath.stem
        self.module = mpath.parent.name
        self.paths = [SQL_DIR / self.module / name for name in files]

    def statements(self):
        """(path, raw bytes, statements) for each file, reading and splitting before any SQL runs."""
        for path in self.paths:
            data, text = read_sql(path, self.migration_id)
            yield path, data, split_statements(text)

    def __call__(self, conn: psycopg.Connection) -> None:
        files = list(self.statements())  # a missing file fails before anything runs
        with conn.cursor() as cur:
            cur.execute(BOOKKEEPING_DDL)
            for path, data, stmts in files:
                for stmt in stmts:
                    try:
                        cur.execute(stmt.text)
                    except psycopg.Error as exc:
                        raise MigrationError(describe_error(path, stmt, exc, self.migration_id)) from None
                rel = str(path.relative_to(SQL_DIR))
                cur.execute(RECORD_SQL, (self.migration_id, self.module, rel, checksum(data), ALGORITHM))


class Rollback:
    """A yoyo rollback step: run SQL, then forget the migration's file checksums."""

    def __init__(self, migration_file: str, sql_text: str):
        self.migration_id = Path(migration_file).stem
        self.sql_text = sql_text

    def __call__(self, conn: psycopg.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(self.sql_text)
            if cur.execute("SELECT to_regclass('dbtool.applied_file')").fetchone()[0]:
                cur.execute("DELETE FROM dbtool.applied_file WHERE migration_id = %s", (self.migration_id,))


def apply_files(migration_file: str, *files: str) -> ApplyFiles:
    return ApplyFiles(migration_file, files)


def rollback_sql(migration_file: str, sql_text: str) -> Rollback:
    return Rollback(migration_file, sql_text)
