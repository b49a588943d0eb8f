"""Building blocks for migrations/ files: apply sql/ files in order, record checksums.

A migration file says which sql/<module>/ files it applies; this module runs them
statement by statement (so an error names the file and line) inside the migration's
transaction, and records each file's checksum in the same transaction. In a migration that is
not transactional (`__transactional__ = False`: changes made online, in steps) every statement
commits on its own, and a `-- batch: N` file's statement runs again and again, each run a short
transaction of its own, until it changes no row.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import psycopg
from psycopg import sql

from . import paths as where
from .errors import MigrationError, first_line
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


def _kind_of(mode: int) -> str:
    return next((name for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                                         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
                 if test(mode)), "an unknown kind")


def check_regular(path: Path, migration_id: str) -> None:
    """Refuse a FIFO, socket or device where a sql/ file should be (reading one can block forever).
    A missing file is left to read_sql, which names it when its migration runs."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise MigrationError(f"{_rel(path)}: not a regular file ({_kind_of(mode)}): refusing to read it "
                             f"(migration {migration_id}; nothing was applied)")


def read_sql(path: Path, migration_id: str) -> tuple[bytes, str]:
    try:
        # O_NONBLOCK: opening a FIFO never waits for a writer; fstat then refuses anything but a file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MigrationError(f"{_rel(path)}: file not found (needed by migration {migration_id})") from None
    except OSError as exc:
        raise MigrationError(f"{_rel(path)}: cannot read: {exc.strerror} (migration {migration_id})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise MigrationError(f"{_rel(path)}: cannot read: Is a directory (migration {migration_id})")
        raise MigrationError(f"{_rel(path)}: not a regular file ({_kind_of(mode)}): refusing to read it "
                             f"(migration {migration_id}; nothing was applied)")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read()
        except OSError as exc:
            raise MigrationError(f"{_rel(path)}: cannot read: {exc.strerror} (migration {migration_id})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{_rel(path)}: not UTF-8 at byte {exc.start} (migration {migration_id})") from None
    return data, text


# -- splitting a file into statements, as psql does ---------------------------------------------
# A small lexer after PostgreSQL's scan.l and psql's psqlscan.l: whitespace, -- and (nested) /* */
# comments, '...' (E'...' with backslash escapes), "..." identifiers, $tag$...$tag$ bodies, words.
# It has no size or nesting limit (sqlparse refuses a 4,000-row INSERT or deep parentheses).
_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_WORD = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9$\x80-\U0010ffff]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$")
_PARAM = re.compile(r"\$[0-9]*")
_BLOCK = re.compile(r"/\*|\*/")
_E_STRING_REST = re.compile(r"(?:[^'\\]+|\\.|'')*'", re.S)

Token = tuple[str, int, int]  # kind, start, end; kind "open" when the text ends inside it (end = len(text))


def _quoted_end(text: str, i: int, quote: str) -> int:
    """End of a '...' or "..." starting at i (doubled quotes escape); -1 when it never closes."""
    k = i + 1
    while True:
        j = text.find(quote, k)
        if j < 0:
            return -1
        if text.startswith(quote, j + 1):
            k = j + 2
            continue
        return j + 1


def _block_end(text: str, i: int) -> int:
    depth = 0
    for m in _BLOCK.finditer(text, i):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return -1


def lex(text: str) -> Iterator[Token]:
    """Yield (kind, start, end): space, comment, word, ident ("..."), string, number, punct; or, when the
    text ends inside a comment, string or identifier, ("open", start, len(text)) last."""
    n, i = len(text), 0
    while i < n:
        c = text[i]
        if c in " \t\n\r\f\v":
            j, kind = _SPACE.match(text, i).end(), "space"  # type: ignore[union-attr]
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j, kind = (n if j < 0 else j), "comment"
        elif text.startswith("/*", i):
            j, kind = _block_end(text, i), "comment"
        elif c == "'" or c == '"':
            j, kind = _quoted_end(text, i, c), ("string" if c == "'" else "ident")
        elif c == "$":
            m = _DOLLAR_TAG.match(text, i)
            if m:
                close = text.find(m.group(), m.end())
                j, kind = (-1 if close < 0 else close + len(m.group())), "string"
            else:
                j, kind = _PARAM.match(text, i).end(), "punct"  # type: ignore[union-attr]
        elif c.isascii() and c.isdigit():
            j, kind = _NUMBER.match(text, i).end(), "number"  # type: ignore[union-attr]
        elif (m := _WORD.match(text, i)) is not None:
            j, kind = m.end(), "word"
            if m.group() in ("e", "E") and text.startswith("'", j):  # E'...': backslash escapes
                rest = _E_STRING_REST.match(text, j + 1)
                j, kind = (rest.end() if rest else -1), "string"
        else:
            j, kind = i + 1, "punct"
        if j < 0:
            yield "open", i, n
            return
        yield kind, i, j
        i = j


def _open_what(text: str, start: int) -> str:
    if text.startswith("$", start):
        return "a dollar-quoted string"
    if text.startswith("/*", start):
        return "a comment"
    return "a quoted identifier" if text.startswith('"', start) else "a quoted string"


def split(text: str) -> tuple[list[Statement], str | None]:
    """The statements of a file, split where psql splits them, with their first lines; and, when the
    file ends before its last statement's closing ';', what it ends inside ("a statement", ...).

    Each statement starts at its first real token (so the server's error position counts from there
    and leading comments never shift the reported line) and ends at its ';'; comments after the last
    ';' belong to no statement. Like psql, a ';' inside parentheses, or inside BEGIN ... END of a
    CREATE FUNCTION/PROCEDURE (BEGIN ATOMIC), does not end a statement.
    """
    out: list[Statement] = []
    start: int | None = None
    paren = begin = count = 0
    heads: list[str | None] = []
    line, at = 1, 0

    def emit(s: int, e: int) -> None:
        nonlocal line, at
        line += text.count("\n", at, s)
        at = s
        out.append(Statement(text[s:e], line))

    for kind, s, e in lex(text):
        if kind in ("space", "comment"):
            continue
        if kind == "open":
            what = _open_what(text, s)
            if start is None and what == "a comment":
                return out, what
            emit(s if start is None else start, len(text))
            out[-1] = Statement(out[-1].text.rstrip(), out[-1].line)
            return out, what
        if start is None:
            start, paren, begin, count, heads = s, 0, 0, 0, [None] * 4
        if kind == "punct":
            ch = text[s]
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(0, paren - 1)
            elif ch == ";" and paren == 0 and begin == 0:
                if s > start:  # a lone ';' is an empty statement: nothing to run
                    emit(start, e)
                start = None
        elif kind == "word":  # psql: track BEGIN ... END in CREATE [OR REPLACE] FUNCTION|PROCEDURE
            word = text[s:e].lower()
            if count < 4:
                heads[count] = word[0] if word in ("create", "function", "procedure", "or", "replace") else None
            count += 1
            if heads[0] == "c" and paren == 0 and (heads[1] in ("f", "p") or (
                    heads[1] == "o" and heads[2] == "r" and heads[3] in ("f", "p"))):
                if word == "begin" or (word == "case" and begin >= 1):
                    begin += 1
                elif word == "end" and begin > 0:
                    begin -= 1
    if start is None:
        return out, None
    emit(start, len(text))
    out[-1] = Statement(out[-1].text.rstrip(), out[-1].line)
    return out, "a BEGIN ... END block" if begin else "parentheses" if paren else "a statement"


def split_statements(text: str) -> list[Statement]:
    """Split like psql does (quotes, dollar quotes, comments respected), keeping line numbers."""
    return split(text)[0]


def describe_error(path: Path, stmt: Statement, exc: psycopg.Error, migration_id: str,
                   outcome: str = "nothing was applied") -> str:
    diag = exc.diag
    line = stmt.line
    if diag.statement_position:
        line += stmt.text.count("\n", 0, int(diag.statement_position) - 1)
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{_rel(path)}:{line}: {message} (migration {migration_id}; {outcome})"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith("ch") else "s")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(where.root()))
    except ValueError:
        return str(path)


# A comment line that is, or looks meant to be, a directive (`-- Lock-Timeout : 30s` too): its value is checked.
DIRECTIVE = re.compile(r"^--\s*(transactional|lock[-_ ]?timeout|statement[-_ ]?timeout|batch)\s*:(.*)$", re.I)
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


# `-- batch: N`: the file's one statement runs again and again, each run in a transaction of its own with the
# file's lock_timeout and statement_timeout, and with this setting at N, until a run changes no row. The statement
# limits itself with it: `... LIMIT nullif(current_setting('dbtool.batch_rows', true), '')::integer`. Outside dbtool
# (psql) the setting is unset (NULL; '' in a session that set it locally before), and LIMIT NULL is no limit: one
# run does every row, so psql ends in the same state.
BATCH_SETTING = "dbtool.batch_rows"
BATCH_MAX = 10_000_000
PROGRESS_EVERY = 10.0  # seconds between two progress lines of a long `-- batch:` file


def batch_problem(value: str) -> str | None:
    """Why `value` is not a `-- batch:` size; None when it is."""
    if not re.fullmatch(r"[0-9]+", value) or not 1 <= int(value) <= BATCH_MAX:
        return f"give the rows per batch, a whole number from 1 to {BATCH_MAX}"
    return None


def uses_batch_setting(text: str) -> bool:
    """Does the statement read the batch size (the string 'dbtool.batch_rows', outside comments)?"""
    return any(kind == "string" and text[s:e] == f"'{BATCH_SETTING}'" for kind, s, e in lex(text))


@dataclass(frozen=True)
class IndexTarget:
    """What a `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON table` names, as written
    (quotes kept): PostgreSQL resolves the names (to_regclass), never a pattern over the text."""

    name: str
    table: str
    concurrently: bool


def index_target(text: str) -> IndexTarget | None:
    """The index a CREATE INDEX statement builds; None for other statements, a nameless index, or
    ON ONLY (a partitioned table's own index, INVALID by design until its partitions' are attached)."""
    toks = [(kind, text[s:e]) for kind, s, e in lex(text) if kind not in ("space", "comment")]

    def word(i: int, *words: str) -> bool:
        return i < len(toks) and toks[i][0] == "word" and toks[i][1].lower() in words

    i = 2 if word(0, "create") and word(1, "unique") else 1
    if not (word(0, "create") and word(i, "index")):
        return None
    i += 1
    concurrently = word(i, "concurrently")
    i += concurrently
    if word(i, "if") and word(i + 1, "not") and word(i + 2, "exists"):
        i += 3
    if word(i, "on") or i >= len(toks) or toks[i][0] not in ("word", "ident"):
        return None
    name = toks[i][1]
    if not word(i + 1, "on") or word(i + 2, "only"):
        return None
    i, parts = i + 2, []
    while i < len(toks) and toks[i][0] in ("word", "ident"):
        parts.append(toks[i][1])
        if toks[i + 1:i + 2] != [("punct", ".")]:
            break
        i += 2
    return IndexTarget(name, ".".join(parts), concurrently) if parts else None


# The relation a CREATE INDEX names, in its table's schema (where PostgreSQL puts an index): is it an
# index, of that table, valid and ready? No row when the table or the name does not resolve.
INDEX_SQL = """
SELECT n.nspname, i.relname, x.indexrelid IS NOT NULL, x.indrelid IS NOT DISTINCT FROM t.oid,
       coalesce(x.indisvalid AND x.indisready, false), format('%%I.%%I', n.nspname, i.relname)
FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class i ON i.oid = to_regclass(format('%%I.', n.nspname) || %(name)s)
LEFT JOIN pg_index x ON x.indexrelid = i.oid
WHERE t.oid = to_regclass(%(table)s)
"""


@dataclass(frozen=True)
class FoundIndex:
    schema: str
    name: str
    is_index: bool
    on_table: bool
    valid: bool
    qualified: str

    @property
    def invalid(self) -> bool:
        """An index of the statement's table left INVALID (a failed CREATE INDEX CONCURRENTLY)."""
        return self.is_index and self.on_table and not self.valid


def find_index(cur, target: IndexTarget) -> FoundIndex | None:
    row = cur.execute(INDEX_SQL, {"name": target.name, "table": target.table}).fetchone()
    return FoundIndex(*row) if row else None


@dataclass
class SqlFile:
    path: Path
    data: bytes
    statements: list[Statement]
    directives: dict[str, str]

    @property
    def transactional(self) -> bool:
        return self.directives.get("transactional", "true").lower() != "false"

    @property
    def batch(self) -> int | None:
        """Rows per batch of a `-- batch: N` file; None for other files."""
        return int(self.directives["batch"]) if "batch" in self.directives else None


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
        elif key == "batch":
            why = batch_problem(value)
        else:
            why = duration_problem(value)
        if why:
            raise MigrationError(f"{where}:{number}: bad directive '-- {given}: {value}': {why} "
                                 f"(migration {migration_id}; nothing was applied)")
        found[key] = value
    return found


def load_file(path: Path, migration_id: str) -> SqlFile:
    data, text = read_sql(path, migration_id)
    stmts, inside = split(text)
    where_ = f"{_rel(path)}"
    directives = read_directives(text, where_, migration_id)
    if inside:  # what follows the last ';' is more than whitespace and comments
        last_line = text.rstrip(" \t\n\r\f\v").count("\n") + 1
        close = "no closing ';'" if inside.endswith("statement") else "never closed"
        raise MigrationError(f"{where_}:{last_line}: the file ends inside {inside} ({close}; "
                             f"truncated?) (migration {migration_id}; nothing was applied)")
    if directives.get("transactional", "true").lower() == "false" and len(stmts) != 1:
        raise MigrationError(f"{where_}: a '-- transactional: false' file holds exactly one statement, "
                             f"found {len(stmts)} (migration {migration_id})")
    if "batch" in directives:
        if directives.get("transactional", "true").lower() == "false":
            raise MigrationError(f"{where_}: '-- batch:' runs each batch in a transaction of its own: remove "
                                 f"'-- transactional: false' (migration {migration_id}; nothing was applied)")
        if len(stmts) != 1:
            raise MigrationError(f"{where_}: a '-- batch:' file holds exactly one statement, found {len(stmts)} "
                                 f"(migration {migration_id}; nothing was applied)")
        if not uses_batch_setting(stmts[0].text):
            raise MigrationError(f"{where_}:{stmts[0].line}: a '-- batch:' statement limits itself with LIMIT "
                                 f"nullif(current_setting('{BATCH_SETTING}', true), '')::integer, or it would run as "
                                 f"one batch (migration {migration_id}; nothing was applied)")
    return SqlFile(path, data, stmts, directives)


class ApplyFiles:
    """A yoyo step (callable on the DB-API connection) that applies sql/ files."""

    def __init__(self, migration_file: str, files: tuple[str, ...]):
        mpath = Path(migration_file)
        self.migration_id = mpath.stem
        self.module = mpath.parent.name
        self.files = files
        self.notes: list[str] = []  # what was repaired on the way, for migrate to say
        self._done: list[str] = []  # files applied by this call (what a non-transactional failure leaves)
        self._batched: str | None = None  # rows a `-- batch:` file committed before a failure
        # Told how a long `-- batch:` file goes, at most every PROGRESS_EVERY seconds (migrate sets it to `say`).
        self.progress: Callable[[str], None] | None = None

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
        self._done, self._batched = [], None
        for f in files if in_transaction else ():
            if not f.transactional:
                raise MigrationError(f"{_rel(f.path)} is marked '-- transactional: false': its migration "
                                     f"{self.migration_id} must set __transactional__ = False")
            if f.batch:
                raise MigrationError(f"{_rel(f.path)} is marked '-- batch: {f.batch}' (each batch commits on its "
                                     f"own): its migration {self.migration_id} must set __transactional__ = False")
        with conn.cursor() as cur:
            cur.execute(BOOKKEEPING_DDL)
            for f in files:
                if f.batch:
                    self._run_batches(cur, f)
                else:
                    self._run_file(cur, f, in_transaction)
                rel = str(f.path.relative_to(where.sql_dir()))
                cur.execute(RECORD_SQL, (self.migration_id, self.module, rel, checksum(f.data), ALGORITHM))
                self._done.append(_rel(f.path))

    def _run_file(self, cur, f: SqlFile, in_transaction: bool) -> None:
        settings: dict[str, str] = {k: f.directives[k] for k in ("lock_timeout", "statement_timeout")
                                    if k in f.directives}
        if not f.transactional:
            settings.setdefault("lock_timeout", "0")  # a concurrent build waits for old transactions by design
        for key, value in settings.items():  # set_config(name, value, is_local): values stay bound
            cur.execute("SELECT set_config(%s, %s, %s)", (key, value, in_transaction))
        try:
            for stmt in f.statements:
                target = index_target(stmt.text)
                if target:
                    self._drop_invalid_index(cur, f, stmt, target, in_transaction)
                try:
                    cur.execute(stmt.text)
                except psycopg.Error as exc:
                    left = None if in_transaction or not target else self._invalid_left(cur, target)
                    raise MigrationError(describe_error(f.path, stmt, exc, self.migration_id,
                                                        self._outcome(in_transaction, left)),
                                         sqlstate=exc.sqlstate) from None
                if target:
                    self._check_index(cur, f, stmt, target, in_transaction)
        finally:
            # Outside a transaction the settings are the session's: put them back even after a failure, so that a
            # retry (migrate --lock-retries) or the next file starts from the migration's own timeouts.
            if not in_transaction and settings:
                self._reset(cur, settings)
        if in_transaction:
            for key in settings:
                cur.execute(sql.SQL("SET LOCAL {} TO DEFAULT").format(sql.Identifier(key)))

    @staticmethod
    def _reset(cur, settings: dict[str, str]) -> None:
        try:
            for key in settings:
                cur.execute(sql.SQL("SET {} TO DEFAULT").format(sql.Identifier(key)))
        except psycopg.Error:  # the connection itself failed: the session and its settings are gone with it
            pass

    def _run_batches(self, cur, f: SqlFile) -> None:
        """A `-- batch: N` file: its statement again and again, each run its own transaction with the file's
        timeouts and dbtool.batch_rows = N, until a run changes no row. What each batch did is committed, so a
        failure (lock_timeout, kill -9) loses one batch at most and the next run goes on from there."""
        stmt, size = f.statements[0], f.batch or 1
        settings: dict[str, str] = {k: f.directives[k] for k in ("lock_timeout", "statement_timeout")
                                    if k in f.directives}
        settings[BATCH_SETTING] = str(size)
        conn = cur.connection
        rows = batches = 0
        started = told = time.monotonic()
        while True:
            try:
                with conn.transaction():
                    for key, value in settings.items():
                        cur.execute("SELECT set_config(%s, %s, true)", (key, value))
                    cur.execute(stmt.text)
                    changed, tag = cur.rowcount, (cur.statusmessage or "").partition(" ")[0]
                    if tag not in ("UPDATE", "DELETE", "INSERT", "MERGE"):
                        raise MigrationError(
                            f"{_rel(f.path)}:{stmt.line}: a '-- batch:' statement is an UPDATE, DELETE, INSERT or "
                            f"MERGE (it ends when a batch changes no row), this one is {tag or 'empty'} (migration "
                            f"{self.migration_id}; {self._outcome(False)})")
                    if changed > size:  # raised inside the transaction: this batch is rolled back
                        raise MigrationError(
                            f"{_rel(f.path)}:{stmt.line}: one batch changed {changed} rows, more than '-- batch: "
                            f"{size}': the statement does not limit itself with current_setting('{BATCH_SETTING}', "
                            f"true) (migration {self.migration_id}; {self._outcome(False)})")
            except psycopg.Error as exc:
                raise MigrationError(describe_error(f.path, stmt, exc, self.migration_id, self._outcome(False)),
                                     sqlstate=exc.sqlstate) from None
            if changed <= 0:
                break
            rows, batches = rows + changed, batches + 1
            self._batched = f"{_count(rows, 'row')} of {_rel(f.path)} in {_count(batches, 'batch')}"
            if self.progress and time.monotonic() - told >= PROGRESS_EVERY:
                told = time.monotonic()
                self.progress(f"{_rel(f.path)}: {_count(rows, 'row')} so far in {_count(batches, 'batch')} of at "
                              f"most {size:,}, each committed ({told - started:.0f}s)")
        self._batched = None
        if rows:
            self.notes.append(f"{_rel(f.path)}: {_count(rows, 'row')} in {_count(batches, 'batch')} of at most "
                              f"{size:,}, each committed on its own ({time.monotonic() - started:.2f}s)")

    def _outcome(self, in_transaction: bool, invalid_index: str | None = None) -> str:
        """What a failure leaves: nothing in a transaction; else the files applied before it, and an
        INVALID index that a failed CREATE INDEX CONCURRENTLY leaves behind."""
        if in_transaction:
            return "nothing was applied"
        left = [f"{', '.join(self._done)} stay{'s' if len(self._done) == 1 else ''} applied"] if self._done else []
        if self._batched:
            left.append(f"{self._batched} stay committed, and the next run goes on from there")
        if invalid_index:
            left.append(f"it left an INVALID index {invalid_index}, which the next run drops and builds again")
        return "not transactional: " + "; ".join(left) if left else "nothing was applied"

    @staticmethod
    def _invalid_left(cur, target: IndexTarget) -> str | None:
        try:
            found = find_index(cur, target)
        except psycopg.Error:  # the connection itself failed: nothing more to learn
            return None
        return found.qualified if found and found.invalid else None

    def _drop_invalid_index(self, cur, f: SqlFile, stmt: Statement, target: IndexTarget, in_transaction: bool) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would keep: drop it
        (found in the catalog, whatever the quoting) so the statement builds it again."""
        try:
            found = find_index(cur, target)
        except psycopg.Error as exc:  # a name PostgreSQL will not take: CREATE INDEX would fail the same way
            raise MigrationError(f"{_rel(f.path)}:{stmt.line}: {first_line(exc)} (migration {self.migration_id}; "
                                 f"{self._outcome(in_transaction)})", sqlstate=exc.sqlstate) from None
        if not (found and found.invalid):
            return
        how = sql.SQL("DROP INDEX {}" if in_transaction else "DROP INDEX CONCURRENTLY {}")
        try:
            cur.execute(how.format(sql.Identifier(found.schema, found.name)))
        except psycopg.Error as exc:
            raise MigrationError(
                f"{_rel(f.path)}:{stmt.line}: cannot drop the INVALID index {found.qualified} (left by an earlier "
                f"failed build) to build it again: {first_line(exc)} (migration {self.migration_id}; "
                f"{self._outcome(in_transaction, found.qualified)})", sqlstate=exc.sqlstate) from None
        self.notes.append(f"dropped the INVALID index {found.qualified} left by an earlier failed build; "
                          f"{_rel(f.path)} builds it again")

    def _check_index(self, cur, f: SqlFile, stmt: Statement, target: IndexTarget, in_transaction: bool) -> None:
        """After the statement, the index it names is a valid index of its table, or the migration fails
        (IF NOT EXISTS keeps whatever already holds the name)."""
        found = find_index(cur, target)
        if found and found.is_index and found.on_table and found.valid:
            return
        if found is None:
            why = f"index {target.name} on {target.table} is not in the catalog after CREATE INDEX"
        elif not found.is_index:
            why = f"{found.qualified} is not an index (IF NOT EXISTS kept what already held the name)"
        elif not found.on_table:
            why = (f"{found.qualified} is an index of another table than {target.table} (IF NOT EXISTS kept "
                   "what already held the name)")
        else:
            why = f"index {found.qualified} is INVALID after CREATE INDEX"
        raise MigrationError(f"{_rel(f.path)}:{stmt.line}: {why} (migration {self.migration_id}; "
                             f"{self._outcome(in_transaction, found.qualified if found and found.invalid else None)})")


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
