"""`dbtool validate`: the live catalog against the expected one, plus applied-file checks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import lock_wait
from ..config import Target
from ..lock import application_name
from .applied import check_applied
from .diff import ERROR, INFO, WARNING, Finding, checked_objects, diff
from .expected import build, load_snapshot
from .model import Catalog
from .read import read_catalog


@dataclass
class Report:
    database: str
    modules: list[str]
    strict: bool
    findings: list[Finding]
    checked: list[tuple[str, str]]
    seconds: float
    sources: list[str] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def summary(self) -> dict:
        return {"errors": self.errors, "warnings": self.count(WARNING), "info": self.count(INFO),
                "checked": len(self.checked), "seconds": round(self.seconds, 3)}


def merge(catalogs: Iterable[Catalog]) -> Catalog:
    merged = Catalog()
    for cat in catalogs:
        merged = merged.merged(cat)
    return merged


def expected_catalog(modules: list[str], *, from_sql_server: Target | None = None,
                     say: Callable[[str], None] | None = None) -> Catalog:
    if from_sql_server is not None:
        return merge(build(from_sql_server, modules, say=say).values())
    return merge(load_snapshot(m) for m in modules)


def validate(target: Target, modules: list[str], *, strict: bool = False, from_sql: bool = False,
             migration_ids: dict[str, list[str]] | None = None, duckdb_path: Path | None = None,
             lock_timeout: float | None = None, say: Callable[[str], None] | None = None) -> Report:
    """`lock_timeout`: seconds to wait for a table lock (catalog functions such as pg_get_expr open the
    table) before stopping with lock_wait.TableLockTimeout naming the holder; default DBTOOL_READ_LOCK_TIMEOUT."""
    started = time.monotonic()
    wait = lock_wait.seconds(lock_timeout)
    expected = expected_catalog(modules, from_sql_server=target if from_sql else None, say=say)
    with target.connect(application_name=application_name("validate")) as conn:
        lock_wait.limit_session(conn, wait)
        conn.read_only = True
        with lock_wait.naming_blockers(conn, wait, command="validate", schemas=modules):
            live = read_catalog(conn, modules)
            applied = check_applied(conn, modules, migration_ids or {}) if migration_ids is not None else []
    findings = diff(expected, live, strict=strict) + applied
    checked = checked_objects(expected, live)
    if duckdb_path is not None:
        duck_expected, duck_live = duckdb_catalogs(duckdb_path)
        findings += diff(duck_expected, duck_live, strict=strict)
        checked += checked_objects(duck_expected, duck_live)
        modules = [*modules, "duckdb"]
    return Report(target.display(), modules, strict, findings, checked, time.monotonic() - started)


def duckdb_catalogs(path: Path) -> tuple[Catalog, Catalog]:
    """The DuckDB file against sql/duckdb/ (applied to an in-memory DuckDB: no server needed)."""
    from ..analytics import catalog as duck_catalog
    from ..analytics.db import connect

    with connect(path, read_only=True) as duck:
        live = duck_catalog.read_duckdb_catalog(duck)
    return duck_catalog.expected_duckdb_catalog(), live
