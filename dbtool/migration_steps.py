"""Building blocks for migrations/ files: apply sql/ files in order, record checksums.

A migration file says which sql/<module>/ files it applies; this module runs them
statement by statement (so an error names the file and line) inside the migration's
transaction, and records each file's checksum in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlparse
from psycopg import sql

from . import paths as where
from .errors import MigrationError
from .fetch import fetch_one
from .fingerprint import ALGORITHM, BOOKKEEPING_DDL, checksum

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
        return str(path.relative_to(where.root()))
    except ValueError:
        return str(path)


DIRECTIVE = re.compile(r"^--\s*(transactional|lock_timeout|statement_timeout)\s*:\s*(\S+)\s*$", re.I)
TIMEOUT_VALUE = re.compile(r"^\d+\s*(ms|s|min|h|d)?$")
CONCURRENT_INDEX = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(?:ONLY\s+)?(\w+)\.",
    re.I)


@dataclass
class SqlFile:
    path: Path
    data: bytes
    statements: list[Statement]
    directives: dict[str, str]

    @property
    def transactional(self) -> bool:
        return self.directives.get("transactional", "true").lower() != "false"


def read_directives(text: str) -> dict[str, str]:
    """yoyo-style directives in the leading comment block (`-- lock_timeout: 30s`)."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("--"):
            break
        if m := DIRECTIVE.match(line.strip()):
            found[m.group(1).lower()] = m.group(2)
    return found


def load_file(path: Path, migration_id: str) -> SqlFile:
    data, text = read_sql(path, migration_id)
    stmts = split_statements(text)
    directives = read_directives(text)
    where_ = f"{_rel(path)}"
    if stmts and not stmts[-1].text.rstrip().endswith(";"):
        last_line = stmts[-1].line + stmts[-1].text.count("\n")
        raise MigrationError(f"{where_}:{last_line}: the file ends inside a statement (no closing ';'; "
                             f"truncated?) (migration {migration_id}; nothing was applied)")
    for key in ("lock_timeout", "statement_timeout"):
        if key in directives and not TIMEOUT_VALUE.match(directives[key]):
            raise MigrationError(f"{where_}: bad {key} directive {directives[key]!r} (e.g. 30s, 5min)")
    if directives.get("transactional", "true").lower() == "false" and len(stmts) != 1:
        raise MigrationError(f"{where_}: a '-- transactional: false' file holds exactly one statement, "
                             f"found {len(stmts)} (migration {migration_id})")
    return SqlFile(path, data, stmts, directives)


class ApplyFiles:
    """A yoyo step (callable on the DB-API connection) that applies sql/ files."""

    def __init__(self, migration_file: str, files: tuple[str, ...]):
        mpath = Path(migration_file)
        self.migration_id = mpath.stem
        self.module = mpath.parent.name
        self.files = files

    @property
    def paths(self) -> list[Path]:
        # Resolved at use, so a test (or DBTOOL_ROOT) can point sql/ elsewhere.
        return [where.sql_dir() / self.module / name for name in self.files]

    def load(self) -> list[SqlFile]:
        """Read, split and check every file before any SQL runs."""
        return [load_file(path, self.migration_id) for path in self.paths]

    def __call__(self, conn: psycopg.Connection) -> None:
        files = self.load()
        in_transaction = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        with conn.cursor() as cur:
            cur.execute(BOOKKEEPING_DDL)
            for f in files:
                if not f.transactional and in_transaction:
                    raise MigrationError(f"{_rel(f.path)} is marked '-- transactional: false': its migration "
                                         f"{self.migration_id} must set __transactional__ = False")
                self._run_file(cur, f, in_transaction)
                rel = str(f.path.relative_to(where.sql_dir()))
                cur.execute(RECORD_SQL, (self.migration_id, self.module, rel, checksum(f.data), ALGORITHM))

    def _run_file(self, cur, f: SqlFile, in_transaction: bool) -> None:
        scope = "LOCAL " if in_transaction else ""
        settings = {k: f.directives[k] for k in ("lock_timeout", "statement_timeout") if k in f.directives}
        if not f.transactional:
            settings.setdefault("lock_timeout", "0")  # a concurrent build waits for old transactions by design
        for key, value in settings.items():  # set_config(name, value, is_local): values stay bound
            cur.execute("SELECT set_config(%s, %s, %s)", (key, value, in_transaction))
        for stmt in f.statements:
            if not f.transactional:
                self._drop_invalid_index(cur, stmt)
            try:
                cur.execute(stmt.text)
            except psycopg.Error as exc:
                raise MigrationError(describe_error(f.path, stmt, exc, self.migration_id),
                                     sqlstate=exc.sqlstate) from None
        for key in settings:
            cur.execute(sql.SQL("SET {} {} TO DEFAULT").format(sql.SQL(scope), sql.Identifier(key)))

    @staticmethod
    def _drop_invalid_index(cur, stmt: Statement) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would keep."""
        m = CONCURRENT_INDEX.match(stmt.text)
        if not m:
            return
        name = sql.Identifier(m.group(2), m.group(1))
        row = cur.execute("SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass(%s)",
                          (f"{m.group(2)}.{m.group(1)}",)).fetchone()
        if row and not row[0]:
            cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name))


class Rollback:
    """A yoyo rollback step: run SQL, then forget the migration's file checksums."""

    def __init__(self, migration_file: str, sql_text: str):
        self.migration_id = Path(migration_file).stem
        self.sql_text = sql_text

    def __call__(self, conn: psycopg.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(self.sql_text)
            if fetch_one(cur.execute("SELECT to_regclass('dbtool.applied_file')"))[0]:
                cur.execute("DELETE FROM dbtool.applied_file WHERE migration_id = %s", (self.migration_id,))


def apply_files(migration_file: str, *files: str) -> ApplyFiles:
    return ApplyFiles(migration_file, files)


def rollback_sql(migration_file: str, sql_text: str) -> Rollback:
    return Rollback(migration_file, sql_text)
