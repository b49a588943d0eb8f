"""Where the DuckDB file is, opening it, and applying sql/duckdb/ to it atomically, file by file.

DuckDB runs a multi-statement string statement by statement and keeps what succeeded, so each file is
run inside BEGIN ... COMMIT and rolled back on the first error: a file that fails halfway leaves nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
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


def connect(path: str | Path | None = None, *, read_only: bool = False,
            create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file; read_only or create=False refuse a missing file instead of creating it.

    A file created here is made private (0600): it holds personal data (phone numbers, messages).
    """
    target = Path(path) if path else default_path()
    if (read_only or not create) and not target.is_file():
        raise UsageError(f"no DuckDB file at {target}; run `dbtool analytics init` first")
    new = not read_only and not os.path.lexists(target)
    try:
        if new:
            target.parent.mkdir(parents=True, exist_ok=True)
        umask = os.umask(0o077) if new else None  # created 0600, never readable by others for a moment
        try:
            return duckdb.connect(str(target), read_only=read_only)
        finally:
            if umask is not None:
                os.umask(umask)
    except OSError as exc:
        raise AnalyticsError(f"cannot create DuckDB file {target}: {exc.strerror or exc}") from None
    except duckdb.Error as exc:
        raise AnalyticsError(f"cannot open DuckDB file {target}: {first_line(exc)}") from None


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT (or ROLLBACK when commit is False, for a dry run); ROLLBACK on any error.

    DuckDB runs statements one by one and keeps what succeeded: work that must be all or nothing
    goes inside this.
    """
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if commit else "ROLLBACK")


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
