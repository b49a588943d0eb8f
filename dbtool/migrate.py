"""yoyo behind our own lock: migrate, status, rollback, dry run.

yoyo keeps the history (_yoyo_migration); we add the advisory lock, timeouts,
file checksums and one-line errors.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql
from yoyo import exceptions as yoyo_exc
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri

from . import paths, progress
from .config import Target, first_line
from .errors import MigrationError, RefusedError, UsageError
from .fetch import fetch_one
from .history import read_history
from .lock import BlockerWatch, application_name, migration_lock
from .migration_steps import TIMEOUT_VALUE, ApplyFiles
from .paths import check_modules  # noqa: F401 (callers use migrate.check_modules)
from .settings import DEFAULT_DDL_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT

Say = Callable[[str], None]



class _Backend(PostgresqlPsycopgBackend):
    """yoyo's psycopg 3 backend, connecting through our Target (masking, app name, timeouts)."""

    target: Target
    app_name: str = "dbtool"
    session_options: str = ""

    def connect(self, dburi):
        extra = {"options": self.session_options} if self.session_options else {}
        return self.target.connect(application_name=self.app_name, autocommit=True, **extra)


# yoyo logs failures (with tracebacks) itself; we report them in one line instead.
logging.getLogger("yoyo").addHandler(logging.NullHandler())
logging.getLogger("yoyo").propagate = False

PREFLIGHT_SQL = """
SELECT current_user, to_regclass('_yoyo_migration') IS NOT NULL,
       has_schema_privilege(current_schema(), 'CREATE'), has_database_privilege(current_database(), 'CREATE')
"""


def preflight(target: Target, modules: list[str]) -> None:
    """Say plainly when this role cannot create what migrate needs (rather than fail halfway)."""
    with target.connect(application_name=application_name("migrate")) as conn:
        user, has_yoyo, schema_create, db_create = fetch_one(conn.execute(PREFLIGHT_SQL))
        missing_schemas = fetch_one(conn.execute(
            "SELECT count(*) FROM unnest(%s::text[]) s WHERE to_regnamespace(s) IS NULL", (modules + ["dbtool"],)))[0]
    if not has_yoyo and not schema_create:
        raise RefusedError(f"the server refused this role: permission denied for {user} to create yoyo's tables "
                           "(needs CREATE on schema public)")
    if missing_schemas and not db_create:
        raise RefusedError(f"the server refused this role: permission denied for {user} to create schemas "
                           "(needs CREATE on the database)")


def open_backend(target: Target, command: str, *, ddl_lock_timeout: str = DEFAULT_DDL_LOCK_TIMEOUT,
                 statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT) -> _Backend:
    for name, value in (("--ddl-lock-timeout", ddl_lock_timeout), ("--statement-timeout", statement_timeout)):
        if not TIMEOUT_VALUE.match(str(value)):
            raise UsageError(f"{name} {value!r}: give a duration such as 500ms, 10s, 5min, 1h")
    options = f"-c lock_timeout={ddl_lock_timeout} -c statement_timeout={statement_timeout}"
    cls = type("DbtoolBackend", (_Backend,), {
        "target": target, "app_name": application_name(command), "session_options": options})
    try:
        backend = cls(parse_uri("postgresql+psycopg://"), "_yoyo_migration")
        try:
            backend.init_database()
        except BaseException:
            backend.connection.close()
            raise
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RefusedError(f"the server refused this role: {first_line(exc)} "
                           "(migrate needs CREATE on the database and on schema public)") from None
    except psycopg.Error as exc:
        raise MigrationError(f"cannot prepare yoyo's tables: {first_line(exc)}", sqlstate=exc.sqlstate) from None
    return backend


def _share_history(backend) -> None:
    # Which migrations ran is not secret: let read-only roles run `status` and `validate`.
    backend.ensure_internal_schema_updated()  # creates yoyo's tables (outside a transaction, under its lock)
    with backend.transaction():
        for table in (backend.migration_table, backend.log_table):
            backend.connection.execute(sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(sql.Identifier(table)))


def load(modules: list[str]):
    dirs = []
    for m in modules:
        d = paths.migrations_dir() / m
        if not d.is_dir():
            raise UsageError(f"no migrations folder {d}")
        dirs.append(str(d))
    try:
        migrations = read_migrations(*dirs)
        for m in migrations:
            m.load()
    except yoyo_exc.BadMigration as exc:
        why = first_line(exc.args[1]) if len(exc.args) > 1 else "invalid"
        raise MigrationError(f"cannot load migration: {exc.args[0]}: {why}") from None
    return migrations


def module_of(migration) -> str:
    return Path(migration.path).parent.name


def file_steps(migration) -> list[ApplyFiles]:
    return [s._apply for s in _steps(migration) if isinstance(getattr(s, "_apply", None), ApplyFiles)]


def files_of(migration) -> list:
    return [p for step in file_steps(migration) for p in step.paths]


def _steps(migration):
    for wrapper in migration.steps:
        yield getattr(wrapper, "step", wrapper)


@dataclass
class Outcome:
    applied: list[str]
    seconds: float


@contextmanager
def _locked_backend(target: Target, command: str, lock_timeout: float, say: Say, **timeouts):
    """Our advisory lock, then yoyo's backend and lock (a leftover yoyo row is provably stale)."""
    with migration_lock(target, command, lock_timeout, say) as lock_conn:
        backend = open_backend(target, command, **timeouts)
        try:
            _clear_stale_yoyo_lock(backend, say)
            with backend.lock(), BlockerWatch(lock_conn, application_name(command)) as watch:
                _share_history(backend)
                yield backend, watch
        finally:
            backend.connection.close()


def migrate(target: Target, modules: list[str], *, say: Say, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
            dry_run: bool = False, **timeouts) -> Outcome:
    migrations = load(modules)
    if dry_run:
        return _dry_run(target, migrations, say)
    preflight(target, modules)
    started = time.monotonic()
    applied = []
    with _locked_backend(target, "migrate", lock_timeout, say, **timeouts) as (backend, watch):
        pending = list(backend.to_apply(migrations))
        bar = progress.Progress("migrate", total=len(pending))  # a live line on a terminal only
        for m in pending:
            watch.check_held()
            t0 = time.monotonic()
            bar.step(f"{m.id} ({len(files_of(m))} files)")
            try:
                _run(backend.apply_one, m, watch)
            except BaseException:
                bar.abort()
                raise
            bar.done_step()
            applied.append(m.id)
            if not bar.active:
                say(f"applied {m.id} ({len(files_of(m))} files) in {time.monotonic() - t0:.2f}s")
    return Outcome(applied, time.monotonic() - started)


def rollback(target: Target, modules: list[str], *, say: Say, everything: bool = False,
             lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **timeouts) -> Outcome:
    migrations = load(modules)
    started = time.monotonic()
    done = []
    with _locked_backend(target, "rollback", lock_timeout, say, **timeouts) as (backend, watch):
        todo = list(backend.to_rollback(migrations))
        if not everything:
            todo = _latest_per_module(todo)
        for m in todo:
            watch.check_held()
            _run(backend.rollback_one, m, watch)
            done.append(m.id)
            say(f"rolled back {m.id}")
    return Outcome(done, time.monotonic() - started)


def reset(target: Target, module: str, *, say: Say, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
          **timeouts) -> Outcome:
    """Drop a module's schema and forget its migrations (yoyo's records and our checksums)."""
    ids = [m.id for m in load([module])]
    started = time.monotonic()
    with _locked_backend(target, "reset", lock_timeout, say, **timeouts) as (backend, _watch):
        with backend.transaction():
            conn = backend.connection
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(module)))
            conn.execute(sql.SQL("DELETE FROM {} WHERE migration_id = ANY(%s)").format(
                sql.Identifier(backend.migration_table)), (ids,))
            if conn.execute("SELECT to_regclass('dbtool.applied_file')").fetchone()[0]:
                conn.execute("DELETE FROM dbtool.applied_file WHERE module = %s", (module,))
    say(f"reset {module}: schema dropped, {len(ids)} migration record(s) forgotten")
    return Outcome(ids, time.monotonic() - started)


def _latest_per_module(todo: list) -> list:
    seen, out = set(), []
    for m in todo:  # to_rollback lists newest first
        if module_of(m) not in seen:
            seen.add(module_of(m))
            out.append(m)
    return out


def _run(fn, migration, watch: BlockerWatch) -> None:
    try:
        fn(migration)
    except MigrationError as exc:
        if exc.sqlstate in ("55P03", "57014"):  # lock_timeout / statement_timeout: say who was in the way
            raise MigrationError(f"{exc}; {watch.describe()}", sqlstate=exc.sqlstate) from None
        raise
    except psycopg.Error as exc:
        raise MigrationError(f"migration {migration.id} failed: {first_line(exc)}; nothing was applied",
                             sqlstate=exc.sqlstate) from None


def _clear_stale_yoyo_lock(backend, say: Say) -> None:
    # We hold the advisory lock, so no other dbtool run is inside yoyo: any row is left by a killed run.
    with backend.transaction():
        rows = backend.connection.execute(sql.SQL("DELETE FROM {} RETURNING pid, ctime").format(
            sql.Identifier(backend.lock_table))).fetchall()
    for pid, ctime in rows:
        say(f"cleared a stale yoyo lock left by pid {pid} at {ctime}")


@dataclass
class MigrationState:
    id: str
    module: str
    applied: bool
    applied_at: datetime | None  # None when applied but this role cannot read yoyo's records
    changed_files: list[str]

    def as_dict(self) -> dict:
        return {"id": self.id, "module": self.module, "pending": not self.applied,
                "applied_at": self.applied_at.isoformat() + "Z" if self.applied_at else None,
                "changed_files": self.changed_files}


def status(target: Target, modules: list[str]) -> list[MigrationState]:
    """Read-only: reads yoyo's table directly rather than letting yoyo create its tables."""
    migrations = load(modules)
    with target.connect(application_name=application_name("status")) as conn:
        history = read_history(conn)
    if history.unreadable:
        raise RefusedError(f"the server refused this role: permission denied to read {', '.join(history.unreadable)} "
                           "(which migrations ran)")
    return [MigrationState(m.id, module_of(m), m.id in history.applied, history.applied.get(m.id),
                           history.changed_files(m.id)) for m in migrations]


def _dry_run(target: Target, migrations, say: Say) -> Outcome:
    pending = [s for s in status(target, sorted({module_of(m) for m in migrations})) if not s.applied]
    by_id = {m.id: m for m in migrations}
    for s in pending:
        m = by_id[s.id]
        say(f"-- pending: {m.id}")
        for f in (f for step in file_steps(m) for f in step.load()):  # one-line errors, as migrate gives
            print(f"-- file: {f.path.relative_to(paths.root())}")
            print(f.data.decode("utf-8-sig"))
    if not pending:
        say("nothing to apply")
    return Outcome([s.id for s in pending], 0.0)
