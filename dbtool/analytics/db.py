"""Where the DuckDB file is, opening it, and applying sql/duckdb/ to it atomically, file by file.

DuckDB runs a multi-statement string statement by statement and keeps what succeeded, so each file is
run inside BEGIN ... COMMIT and rolled back on the first error: a file that fails halfway leaves nothing.

The file holds personal data (phone numbers, messages), and so do the files DuckDB writes beside it while a
connection is open: its write-ahead log `<file>.wal` (created at the first write and deleted at each
checkpoint, so created again and again) and its spill folder `<file>.tmp` (temp_directory, for sorts and
joins bigger than memory). DuckDB creates them with the process umask, commonly 0644 / 0755. So while a
connection opened here is open, the process umask is 077: everything DuckDB creates is 0600 (folders 0700),
like the local PostgreSQL cluster's files; the previous umask is back when the last such connection is
garbage-collected. A file, WAL or spill folder left with wider modes (an older dbtool, a killed run) is
narrowed when the file is opened for writing.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .. import paths, settings
from ..errors import DbtoolError, UsageError, first_line  # noqa: F401 (sync imports it from here)

PATH_ENV = "DBTOOL_DUCKDB_PATH"

_LINE = re.compile(r"^LINE (\d+):", re.M)


class AnalyticsError(DbtoolError):
    """A DuckDB file could not be opened, or a DuckDB statement failed (exit 1)."""


def duck_error(what: str, exc: duckdb.Error) -> AnalyticsError:
    """One line for a failed DuckDB statement; a missing table most likely means an uninitialised file."""
    hint = " (run `dbtool analytics init`?)" if isinstance(exc, duckdb.CatalogException) else ""
    return AnalyticsError(f"{what}: {first_line(exc)}{hint}")


def default_path() -> Path:
    """--path wins; then DBTOOL_DUCKDB_PATH; then var/analytics.duckdb."""
    return settings.get(PATH_ENV) or paths.var_dir() / "analytics.duckdb"


def duckdb_sql_dir() -> Path:
    return paths.sql_dir() / "duckdb"


PRIVATE_UMASK = 0o077
_umask_guard = threading.Lock()
_umask_holders = 0
_umask_before = 0


def _hold_private_umask() -> Callable[[], None]:
    """Make the process umask 077 (it is process-wide) until the returned function is called; nested holds
    (several connections) count, and the umask from before the first is back after the last."""
    global _umask_holders, _umask_before
    with _umask_guard:
        if _umask_holders == 0:
            _umask_before = os.umask(PRIVATE_UMASK)
            os.umask(_umask_before | PRIVATE_UMASK)  # never looser than it was
        _umask_holders += 1
    released = threading.Event()

    def release() -> None:
        global _umask_holders
        if released.is_set():
            return
        released.set()
        with _umask_guard:
            _umask_holders -= 1
            if _umask_holders == 0:
                os.umask(_umask_before)

    return release


def _narrow(path: Path, mode: int) -> None:
    """chmod `path` down to `mode` when it is ours, not a symbolic link, and open to others; else leave it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or not stat.S_IMODE(st.st_mode) & 0o077:
        return
    os.chmod(path, stat.S_IMODE(st.st_mode) & mode, follow_symlinks=False)


def companions(target: Path) -> tuple[Path, Path]:
    """The write-ahead log and the spill folder DuckDB keeps beside the file `target`."""
    return target.with_name(target.name + ".wal"), target.with_name(target.name + ".tmp")


def connect(path: str | Path | None = None, *, read_only: bool = False,
            create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file; read_only or create=False refuse a missing file instead of creating it.

    The file and whatever DuckDB writes beside it (WAL, spill files) are private to the owner (0600, folders
    0700): they hold personal data (phone numbers, messages). See the module docstring.
    """
    target = Path(path) if path else default_path()
    if (read_only or not create) and not target.is_file():
        raise UsageError(f"no DuckDB file at {target}; run `dbtool analytics init` first")
    new = not read_only and not os.path.lexists(target)
    release = _hold_private_umask()
    try:
        if new:
            target.parent.mkdir(parents=True, exist_ok=True)
        elif not read_only:
            wal, spill = companions(target)
            for file, mode in ((target, 0o600), (wal, 0o600), (spill, 0o700)):
                _narrow(file, mode)
        conn = duckdb.connect(str(target), read_only=read_only)
    except OSError as exc:
        release()
        raise AnalyticsError(f"cannot {'create' if new else 'open'} DuckDB file {target}: "
                             f"{exc.strerror or exc}") from None
    except duckdb.Error as exc:
        release()
        raise AnalyticsError(f"cannot open DuckDB file {target}: {first_line(exc)}") from None
    except BaseException:
        release()
        raise
    weakref.finalize(conn, release)  # the umask is back once the connection is gone
    _FILES[conn] = target.absolute()
    return conn


_FILES: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Path] = weakref.WeakKeyDictionary()


def file_of(conn: duckdb.DuckDBPyConnection) -> Path | None:
    """The file a connection made by connect() opened (None for any other connection): where its search
    sidecar is, without a query."""
    return _FILES.get(conn)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT (or ROLLBACK when commit is False, for a dry run); ROLLBACK on any error.

    DuckDB runs statements one by one and keeps what succeeded: work that must be all or nothing
    goes inside this. Functions registered inside with at_end() run once it has ended.
    """
    conn.execute("BEGIN")
    began(conn)
    try:
        yield conn
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        finally:
            ended(conn, committed=False)
        raise
    try:
        conn.execute("COMMIT" if commit else "ROLLBACK")
    except BaseException:
        ended(conn, committed=False)
        raise
    ended(conn, committed=commit)


# Work to do once a transaction begun by transaction() (or another dbtool BEGIN that calls began/ended) ends,
# committed or not: e.g. the search sidecar's writer-in-flight mark (embeddings.py).
_AT_END: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, list[Callable[[bool], None]]] = \
    weakref.WeakKeyDictionary()


def began(conn: duckdb.DuckDBPyConnection) -> None:
    _AT_END[conn] = []


def ended(conn: duckdb.DuckDBPyConnection, *, committed: bool) -> None:
    for fn in _AT_END.pop(conn, []):
        fn(committed)


def at_end(conn: duckdb.DuckDBPyConnection, fn: Callable[[bool], None]) -> bool:
    """Run fn(committed) when the dbtool transaction open on conn ends; False (fn not registered) when conn is
    in no dbtool transaction."""
    pending = _AT_END.get(conn)
    if pending is None:
        return False
    pending.append(fn)
    return True


def sql_files(sql_dir: Path | None = None) -> list[Path]:
    return sorted(Path(sql_dir or duckdb_sql_dir()).glob("[0-9][0-9][0-9]_*.sql"))


@dataclass(frozen=True)
class Applied:
    files: list[str]
    new_objects: int  # tables and indexes that did not exist before: 0 on a re-run


def apply_schema(conn: duckdb.DuckDBPyConnection, *, sql_dir: Path | None = None) -> Applied:
    """Run every NNN_*.sql file of sql_dir in order, each in its own transaction."""
    files = sql_files(sql_dir)
    if not files:
        raise UsageError(f"no NNN_*.sql files in {sql_dir or duckdb_sql_dir()}")
    before = _object_count(conn)
    for path in files:
        apply_file(conn, path)
    return Applied([p.name for p in files], _object_count(conn) - before)


def apply_file(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
    try:
        statements = conn.extract_statements(text)
    except duckdb.Error as exc:  # a parse error: the whole text was parsed, so a LINE is the file's line
        raise AnalyticsError(f"{path.name}, line {_pointed_line(exc, 1, 1, last_line)}: {first_line(exc)}") from None
    pos = 0
    with transaction(conn):
        for stmt in statements:
            # Run the statement from its first keyword, whose file line we know: how a DuckDB release
            # counts lines in what it was given (leading blank lines, comments) then does not matter.
            at = text.find(stmt.query, pos)
            query = _strip_leading_trivia(stmt.query)
            if at >= 0:
                at += len(stmt.query) - len(query)
                pos = at + len(query)
            start = text.count("\n", 0, at) + 1 if at >= 0 else 1
            end = start + query.rstrip().count("\n")
            try:
                conn.execute(query)
            except duckdb.Error as exc:
                raise AnalyticsError(f"{path.name}, line {_pointed_line(exc, start, start, end)}: "
                                     f"{first_line(exc)}") from None


def _strip_leading_trivia(query: str) -> str:
    """The statement without the blank lines and comments before its first keyword."""
    while True:
        query = query.lstrip()
        if query.startswith("--"):
            query = query.partition("\n")[2]
        elif query.startswith("/*") and "*/" in query:
            query = query.partition("*/")[2]
        else:
            return query


def _pointed_line(exc: BaseException, origin: int, first: int, last: int) -> int:
    """The line DuckDB points at (its 'LINE n' counts from `origin`), kept within [first, last].

    The statement's first line is the answer whenever the message has no pointer, or one that
    falls outside the statement: a release's wording or counting can never move us out of it.
    """
    m = _LINE.search(str(exc))
    line = origin + int(m.group(1)) - 1 if m else first
    return line if first <= line <= last else first


def _object_count(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE NOT internal AND NOT temporary)"
        " + (SELECT count(*) FROM duckdb_indexes())").fetchall()[0][0]


def init(path: str | Path | None = None, *, sql_dir: Path | None = None) -> tuple[Path, Applied]:
    """Create (or bring up to date) the DuckDB file at path; idempotent."""
    target = Path(path) if path else default_path()
    with connect(target) as conn:
        return target, apply_schema(conn, sql_dir=sql_dir)
