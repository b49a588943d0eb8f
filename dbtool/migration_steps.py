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


# A comment line that is, or looks meant to be, a directive (`-- Lock-Timeout : 30s` too): its value is checked.
DIRECTIVE = re.compile(r"^--\s*(transactional|lock[-_ ]?timeout|statement[-_ ]?timeout)\s*:(.*)$", re.I)
# A time setting as PostgreSQL takes it in `-c lock_timeout=...`: a number and a unit (case-sensitive),
# no space (a space would end the -c option).
TIMEOUT_VALUE = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s|min|h|d)?$")
_MS_PER_UNIT = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}
TIMEOUT_MAX_MS = 2**31 - 1  # lock_timeout and statement_timeout are int milliseconds


def duration_problem(value: str) -> str | None:
    """Why `value` is not a lock_timeout / statement_timeout PostgreSQL accepts; None when it is."""
    m = TIMEOUT_VALUE.match(value)
    if not m:
        return "give a duration such as 500ms, 10s, 5min, 1h (a number, then us, ms, s, min, h or d; no space)"
    ms = float(m.group(1)) * _MS_PER_UNIT[m.group(2)]
    if ms > TIMEOUT_MAX_MS:
        return f"give at most {TIMEOUT_MAX_MS}ms (about 24 days; 0 means no limit)"
    if 0 < ms <= 0.5:  # the server rounds to whole milliseconds: 0, no limit at all
        return "give at least 1ms (less rounds to 0, which means no limit)"
    return None


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


def read_directives(text: str, where: str = "<sql>", migration_id: str = "?") -> dict[str, str]:
    """yoyo-style directives in the leading comment block (`-- lock_timeout: 30s`).

    A bad one is refused in one line naming the file and line (MigrationError), never ignored:
    a value PostgreSQL would not take, a misspelt name, one given twice, or one below the first
    statement (where it would have no effect).
    """
    found: dict[str, str] = {}
    in_header = True
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            in_header = False
        m = DIRECTIVE.match(stripped)
        if not m:
            continue
        given, value = m.group(1), m.group(2).strip()
        key = re.sub(r"[-_ ]?timeout$", "_timeout", given.lower())
        why: str | None
        if not in_header:
            why = "directives go in the comments above the first statement (here it would be ignored)"
        elif given.lower() != key:
            why = f"write '-- {key}:'"
        elif key in found:
            why = f"{key} is already given above"
        elif key == "transactional":
            why = None if value.lower() in ("true", "false") else "give true or false"
        else:
            why = duration_problem(value)
        if why:
            raise MigrationError(f"{where}:{number}: bad directive '-- {given}: {value}': {why} "
                                 f"(migration {migration_id}; nothing was applied)")
        found[key] = value
    return found


def load_file(path: Path, migration_id: str) -> SqlFile:
    data, text = read_sql(path, migration_id)
    stmts = split_statements(text)
    where_ = f"{_rel(path)}"
    directives = read_directives(text, where_, migration_id)
    if stmts and not stmts[-1].text.rstrip().endswith(";"):
        last_line = stmts[-1].line + stmts[-1].text.count("\n")
        raise MigrationError(f"{where_}:{last_line}: the file ends inside a statement (no closing ';'; "
                             f"truncated?) (migration {migration_id}; nothing was applied)")
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

    def __init__(self, migration_file: str, sql_text: str | sql.Composed):
        self.migration_id = Path(migration_file).stem
        self.sql_text = sql_text

    def __call__(self, conn: psycopg.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(self.sql_text)
            if fetch_one(cur.execute("SELECT to_regclass('dbtool.applied_file')"))[0]:
                cur.execute("DELETE FROM dbtool.applied_file WHERE migration_id = %s", (self.migration_id,))


def apply_files(migration_file: str, *files: str) -> ApplyFiles:
    return ApplyFiles(migration_file, files)


def rollback_sql(migration_file: str, sql_text: str | sql.Composed) -> Rollback:
    return Rollback(migration_file, sql_text)


def module_privileges_rollback(module: str) -> sql.Composed:
    """Undo sql/<module>/NNN_privileges.sql: revoke what it granted and give PUBLIC back PostgreSQL's
    default EXECUTE on the module's functions. The cluster-global roles stay (other databases use them)."""
    ids = {"schema": sql.Identifier(module), "rw": sql.Identifier(f"{module}_rw"),
           "ro": sql.Identifier(f"{module}_ro")}
    return sql.SQL("""
REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {rw}, {ro};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {rw}, {ro};
REVOKE ALL ON ALL ROUTINES IN SCHEMA {schema} FROM {rw}, {ro};
REVOKE ALL ON SCHEMA {schema} FROM {rw}, {ro};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {rw}, {ro};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {rw}, {ro};
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {schema} TO PUBLIC;
""").format(**ids)
