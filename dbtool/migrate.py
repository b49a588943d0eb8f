"""yoyo behind our own lock: migrate, status, rollback, dry run.

yoyo keeps the history (_yoyo_migration); we add the advisory lock, timeouts,
file checksums and one-line errors.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql
from yoyo import exceptions as yoyo_exc
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.migrations import Migration
from yoyo.topologicalsort import CycleError
from yoyo.topologicalsort import topological_sort as cycle_free_order

from . import paths, progress, seed
from .config import Target, first_line
from .errors import DbtoolError, MigrationError, RefusedError, UsageError
from .fetch import fetch_one
from .history import read_history
from .lock import BlockerWatch, LockTimeout, Session, application_name, end_stale_sessions, migration_lock, sessions
from .migration_steps import TIMEOUT_VALUE, ApplyFiles, check_regular
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
        conn = self.target.connect(application_name=self.app_name, autocommit=True, **extra)
        if conn.info.server_version >= 140000:
            # Should this process die (kill -9), the server ends the statement within 2s rather than run it
            # to its end holding its locks.
            try:
                conn.execute("SET client_connection_check_interval = '2s'")
            except psycopg.Error:
                pass
        return conn

    # yoyo's lock row holds the locker's OS pid; dbtool's holds minus it, so that a later run knows the row for
    # a dbtool run's (its sessions are named after that pid) and never mistakes a yoyo run's for one.
    def _insert_lock_row(self, pid, timeout, poll_interval=0.5):
        return super()._insert_lock_row(-pid, timeout, poll_interval)

    def _delete_lock_row(self, pid):
        return super()._delete_lock_row(-pid)


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
    """Read and check every migration of `modules`, before any lock is taken: a problem is one line naming the
    file (exit 1), whatever the file does (a syntax error, bad bytes, `raise SystemExit(0)`, a cycle)."""
    dirs = []
    for m in modules:
        d = paths.migrations_dir() / m
        if not d.is_dir():
            raise UsageError(f"no migrations folder {d}")
        _refuse_foreign_files(d)
        dirs.append(str(d))
    migrations = read_migrations(*dirs)
    for m in migrations:
        _load_one(m)
    _refuse_cycles(migrations)
    return migrations


def _rel(path) -> str:
    """A migration file's path relative to the checkout (its own name kept: never a symlink's target)."""
    p = Path(path)
    for candidate in (p, p.parent.resolve() / p.name):
        try:
            return str(candidate.relative_to(paths.root()))
        except ValueError:
            continue
    return str(p)


def _refuse_foreign_files(folder: Path) -> None:
    """yoyo would run a .sql file in migrations/ as it is (no checksums, directives, one-line errors, INVALID
    index repair) and a post-apply hook on every run, outside dbtool's order: refuse both."""
    for path in sorted(folder.iterdir()):
        if path.suffix in (".py", ".sql") and path.exists() and not path.is_file() and not path.is_dir():
            raise MigrationError(f"{_rel(path)}: not a regular file (yoyo would skip it as if it were not there)")
        if not path.is_file():
            continue
        if path.suffix == ".sql":
            raise MigrationError(
                f"{_rel(path)}: yoyo would run this .sql file as it is, without dbtool's checks; put the SQL in "
                f"sql/{folder.name}/NNN_<what>.sql and write the migration as {_rel(path.with_suffix('.py'))} "
                "calling apply_files (README: Adding a table)")
        if path.suffix == ".py" and path.name.startswith("post-apply"):
            raise MigrationError(f"{_rel(path)}: dbtool does not run yoyo post-apply hooks; write a numbered "
                                 "migration instead")


def _load_one(migration) -> None:
    where = _rel(migration.path)
    try:
        Path(migration.path).read_bytes().decode("utf-8")  # yoyo reads it in the locale's encoding
    except UnicodeDecodeError as exc:
        raise MigrationError(f"cannot load migration {where}: not UTF-8 at byte {exc.start}") from None
    except OSError as exc:
        raise MigrationError(f"cannot load migration {where}: {exc.strerror}") from None
    try:
        migration.load()
    except yoyo_exc.BadMigration as exc:
        why = exc.args[1] if len(exc.args) > 1 else exc.args[0]
        if isinstance(why, str) and why.startswith("Could not resolve dependencies"):
            why = f"__depends__ names a migration that does not exist ({_unknown_depends(migration)})"
        raise MigrationError(f"cannot load migration {where}: {_why(why)}") from None
    except BaseException as exc:  # SystemExit, KeyboardInterrupt raised by the file itself: not a way out
        if isinstance(exc, KeyboardInterrupt) and not _raised_by(exc, migration):
            raise
        raise MigrationError(f"cannot load migration {where}: {_why(exc)}") from None


def _why(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    if not isinstance(exc, Exception):  # SystemExit(0), KeyboardInterrupt: a way out, not an error message
        return f"it raised {type(exc).__name__}" + (f"({exc.args[0]!r})" if exc.args else "")
    text = first_line(exc) if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text and text != type(exc).__name__ else f"it raised {type(exc).__name__}"


def _unknown_depends(migration) -> str:
    depends = getattr(migration.module, "__depends__", []) or []
    depends = [depends] if isinstance(depends, (str, bytes)) else list(depends)
    known = set(Migration._Migration__all_migrations)
    return ", ".join(str(d) for d in depends if d not in known) or "?"


def _raised_by(exc: BaseException, migration) -> bool:
    """Did the migration file's own code raise `exc` (rather than a Ctrl-C arriving while it ran)?"""
    tb, innermost = exc.__traceback__, None
    while tb is not None:
        innermost, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    return innermost is not None and Path(innermost).resolve() == Path(migration.path).resolve()


def _refuse_cycles(migrations) -> None:
    graph = {m: (m.depends & set(migrations)) for m in migrations}
    try:
        list(cycle_free_order(list(migrations), graph))
    except CycleError as exc:
        files = ", ".join(_rel(m.path) for m in exc.args[1])
        raise MigrationError(f"cannot load migrations: their __depends__ form a cycle: {files}") from None


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


LOCK_WAITS = ("55P03", "57014")  # lock_timeout, statement_timeout (or a cancel): say who was in the way


@contextmanager
def _locked_backend(target: Target, command: str, lock_timeout: float, say: Say, *, terminate_stale: bool = True,
                    **timeouts):
    """Our advisory lock; then the sessions of killed dbtool runs ended; then yoyo's backend and lock, once
    a yoyo lock row left by another run is provably stale or gone."""
    with migration_lock(target, command, lock_timeout, say) as lock_conn:
        end_stale_sessions(lock_conn, terminate=terminate_stale, timeout=lock_timeout, say=say)
        backend = open_backend(target, command, **timeouts)
        try:
            _wait_for_yoyo_lock(backend, application_name(command), lock_timeout, say)
            with _yoyo_lock(backend, lock_timeout), BlockerWatch(lock_conn, application_name(command)) as watch:
                try:
                    _share_history(backend)
                    yield backend, watch
                except psycopg.Error as exc:
                    if exc.sqlstate in LOCK_WAITS:
                        raise MigrationError(f"{command} failed: {first_line(exc)}; {watch.describe()}",
                                             sqlstate=exc.sqlstate) from None
                    raise
        finally:
            backend.connection.close()


@contextmanager
def _yoyo_lock(backend, timeout: float):
    """yoyo's own lock row (a yoyo run started since _wait_for_yoyo_lock looked: yoyo waits `timeout`)."""
    lock = backend.lock(timeout)
    try:
        lock.__enter__()
    except yoyo_exc.LockTimeout as exc:
        raise LockTimeout(f"gave up after {timeout:g}s waiting for yoyo's lock, taken meanwhile by another tool: "
                          f"{first_line(exc)}; nothing was changed") from None
    try:
        yield
    except BaseException:
        if not lock.__exit__(*sys.exc_info()):
            raise
    else:
        lock.__exit__(None, None, None)


def migrate(target: Target, modules: list[str], *, say: Say, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
            dry_run: bool = False, **timeouts) -> Outcome:
    migrations = load(modules)
    if dry_run:
        return _dry_run(target, migrations, say)
    for m in migrations:  # a FIFO read under the lock would hold it forever
        for path in files_of(m):
            check_regular(path, m.id)
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
            finally:
                for note in (n for step in file_steps(m) for n in step.notes):
                    say(note)
                for step in file_steps(m):
                    step.notes.clear()
            bar.done_step()
            applied.append(m.id)
            if not bar.active:
                say(f"applied {m.id} ({len(files_of(m))} files) in {time.monotonic() - t0:.2f}s")
    return Outcome(applied, time.monotonic() - started)


def rollback(target: Target, modules: list[str], *, say: Say, everything: bool = False, cascade: bool = False,
             confirm: Confirm | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **timeouts) -> Outcome:
    """Roll back the latest migration of each module (every one with `everything`).

    Under the lock, before anything changes: refuse when an applied migration newer than what would be
    rolled back is missing from disk; try the whole rollback in a transaction that is rolled back, to
    learn which tables it drops and which objects outside the modules go with them (refused unless
    `cascade`); then `confirm(plan)`, which may raise to refuse. Each migration then rolls back in one
    transaction that fails if it would drop an outside object the plan did not name.
    """
    migrations = load(modules)
    started = time.monotonic()
    done = []
    with _locked_backend(target, "rollback", lock_timeout, say, **timeouts) as (backend, watch):
        todo = list(backend.to_rollback(migrations))
        if not everything:
            todo = _latest_per_module(todo)
        _refuse_missing_on_disk(backend, migrations, modules, todo, everything)
        plan = _preview_rollback(backend, todo)
        _refuse_outside(plan, cascade)
        if confirm and todo:
            confirm(plan)
        allowed = {d.key for d in plan.outside}
        for m in todo:
            watch.check_held()
            _run(lambda mig: _rollback_one(backend, mig, allowed), m, watch)
            done.append(m.id)
            say(f"rolled back {m.id}")
    return Outcome(done, time.monotonic() - started)


def reset(target: Target, module: str, *, say: Say, cascade: bool = False, confirm: Confirm | None = None,
          lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **timeouts) -> Outcome:
    """Drop a module's schema and forget its migrations (yoyo's records and our checksums).

    Objects outside the schema that depend on it (DROP SCHEMA ... CASCADE would drop them too) are
    refused unless `cascade`; `confirm(plan)` is called, under the lock, before anything changes.
    """
    ids = [m.id for m in load([module])]
    started = time.monotonic()
    with _locked_backend(target, "reset", lock_timeout, say, **timeouts) as (backend, watch):
        conn = backend.connection
        plan = DropPlan("reset", [module], tables=[t.name for t in _module_tables(conn, [module])],
                        outside=outside_dependents(conn, [module]))
        _refuse_outside(plan, cascade)
        if confirm:
            confirm(plan)
        allowed = {d.key for d in plan.outside}
        try:
            forgotten = _drop_module(backend, module, ids, allowed)
        except psycopg.Error as exc:
            blocked = f"; {watch.describe()}" if exc.sqlstate in LOCK_WAITS else ""
            raise MigrationError(f"reset {module} failed: {first_line(exc)}{blocked}; nothing was dropped",
                                 sqlstate=exc.sqlstate) from None
    also = f"; also dropped {len(plan.outside)} object(s) outside it" if plan.outside else ""
    say(f"reset {module}: schema dropped, {forgotten} migration record(s) forgotten{also}")
    return Outcome(ids, time.monotonic() - started)


def _drop_module(backend, module: str, ids: list[str], allowed: set) -> int:
    """In one transaction: drop the schema, forget its migrations; how many records were forgotten."""
    conn = backend.connection
    with backend.transaction():
        _refuse_unconfirmed(outside_dependents(conn, [module]), allowed, "reset")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(module)))
        # The module's applied migrations missing from disk too: their schema is gone as well, and a
        # record left behind would mark them applied when their file comes back.
        forgotten = conn.execute(sql.SQL("DELETE FROM {} WHERE migration_id = ANY(%s) OR split_part("
                                         "migration_id, '_', 1) = %s").format(
            sql.Identifier(backend.migration_table)), (ids, module)).rowcount
        if fetch_one(conn.execute("SELECT to_regclass('dbtool.applied_file')"))[0]:
            conn.execute("DELETE FROM dbtool.applied_file WHERE module = %s", (module,))
        seed.forget_dropped(conn)
    return forgotten


def _latest_per_module(todo: list) -> list:
    seen, out = set(), []
    for m in todo:  # to_rollback lists newest first
        if module_of(m) not in seen:
            seen.add(module_of(m))
            out.append(m)
    return out


# -- what a rollback or reset drops ----------------------------------------------------------

# Everything DROP SCHEMA ... CASCADE of these schemas drops (pg_depend, recursively: the dependents of each
# dropped object, and the owner of an object that is internal to it: a view goes with its _RETURN rule),
# outside them, leaving out what is part of another such object (its columns, indexes, constraints, row
# type, TOAST table). TABLES_SQL lists the tables of the schemas: what a rollback drops with their rows.
OUTSIDE_SQL = """
WITH RECURSIVE doomed(classid, objid, objsubid) AS (
    SELECT 'pg_namespace'::regclass::oid, n.oid, 0 FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
  UNION
    SELECT nxt.classid, nxt.objid, nxt.objsubid FROM doomed x CROSS JOIN LATERAL (
        SELECT d.classid, d.objid, d.objsubid FROM pg_depend d
        WHERE d.refclassid = x.classid AND d.refobjid = x.objid AND (x.objsubid = 0 OR d.refobjsubid = x.objsubid)
        UNION ALL
        SELECT d.refclassid, d.refobjid, d.refobjsubid FROM pg_depend d
        WHERE d.classid = x.classid AND d.objid = x.objid AND (x.objsubid = 0 OR d.objsubid = x.objsubid)
          AND d.deptype = 'i'
    ) nxt
)
SELECT x.classid, x.objid, x.objsubid, i.type, i.identity
FROM doomed x CROSS JOIN LATERAL pg_identify_object(x.classid, x.objid, x.objsubid) i
WHERE x.classid <> 'pg_namespace'::regclass AND NOT coalesce(i.schema = ANY(%(schemas)s), false)
  AND NOT (x.objsubid <> 0 AND EXISTS (SELECT 1 FROM doomed y
           WHERE (y.classid, y.objid, y.objsubid) = (x.classid, x.objid, 0)))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN doomed y ON (y.classid, y.objid) = (d.refclassid, d.refobjid)
                  AND (y.objsubid = 0 OR y.objsubid = d.refobjsubid)
                  WHERE (d.classid, d.objid, d.objsubid) = (x.classid, x.objid, x.objsubid) AND d.deptype IN ('i', 'a')
                    AND (y.classid, y.objid, y.objsubid) <> (x.classid, x.objid, x.objsubid))
ORDER BY i.type, i.identity
"""

TABLES_SQL = """
SELECT 'pg_class'::regclass::oid, c.oid, 0, 'table', format('%%I.%%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p')
ORDER BY 5
"""

# Which of these objects no longer exist (a dropped column stays in pg_attribute, marked dropped).
VANISHED_SQL = """
SELECT k.classid, k.objid, k.objsubid
FROM unnest(%s::oid[], %s::oid[], %s::int[]) AS k(classid, objid, objsubid)
WHERE (pg_identify_object(k.classid, k.objid, k.objsubid)).identity IS NULL
   OR (k.classid = 'pg_class'::regclass AND k.objsubid <> 0 AND NOT EXISTS (
       SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.objid AND a.attnum = k.objsubid AND NOT a.attisdropped))
"""


@dataclass(frozen=True)
class Dependent:
    """An object a drop takes with it: key (classid, objid, objsubid), kind and name as PostgreSQL gives them."""

    key: tuple[int, int, int]
    kind: str
    name: str

    def __str__(self) -> str:
        rows = " (and its rows)" if self.kind in ("table", "materialized view") else ""
        return f"{self.kind} {self.name}{rows}"


@dataclass
class DropPlan:
    """What a rollback or reset is about to drop, for the refusal and the confirmation."""

    command: str  # "rollback" or "reset"
    modules: list[str]
    migrations: list[str] = field(default_factory=list)  # rollback: the ids, in order
    tables: list[str] = field(default_factory=list)  # tables of the modules it drops, with their rows
    outside: list[Dependent] = field(default_factory=list)  # objects outside the modules it drops too
    unpreviewed: list[str] = field(default_factory=list)  # non-transactional migrations: not tried first


Confirm = Callable[[DropPlan], None]


def outside_dependents(conn: psycopg.Connection, schemas: list[str]) -> list[Dependent]:
    """What DROP SCHEMA ... CASCADE of `schemas` would drop outside them, from pg_depend."""
    return [Dependent((c, o, s), kind, name)
            for c, o, s, kind, name in conn.execute(OUTSIDE_SQL, {"schemas": schemas}).fetchall()]


def _module_tables(conn: psycopg.Connection, schemas: list[str]) -> list[Dependent]:
    return [Dependent((c, o, s), kind, name)
            for c, o, s, kind, name in conn.execute(TABLES_SQL, {"schemas": schemas}).fetchall()]


def _vanished(conn: psycopg.Connection, objects: list[Dependent]) -> set[tuple[int, int, int]]:
    if not objects:
        return set()
    cols = list(zip(*(d.key for d in objects)))
    return {tuple(r) for r in conn.execute(VANISHED_SQL, [list(c) for c in cols]).fetchall()}


def _listed(objects: list, limit: int = 10) -> str:
    shown = ", ".join(str(o) for o in objects[:limit])
    return shown + (f" and {len(objects) - limit} more" if len(objects) > limit else "")


def _refuse_outside(plan: DropPlan, cascade: bool) -> None:
    if plan.outside and not cascade:
        would = "may" if plan.unpreviewed else "would"
        one = len(plan.modules) == 1
        raise UsageError(f"{plan.command} of {', '.join(plan.modules)} {would} also drop {len(plan.outside)} "
                         f"object(s) outside {'the module' if one else 'these modules'} that depend on "
                         f"{'it' if one else 'them'}: {_listed(plan.outside)}; nothing was dropped "
                         "(add --cascade to drop them too)")


def _refuse_unconfirmed(dropping: list[Dependent], allowed: set, command: str) -> None:
    new = [d for d in dropping if d.key not in allowed]
    if new:
        raise UsageError(f"{command} would now also drop {_listed(new)} (created since it was listed); "
                         "nothing was dropped: run it again")


def _refuse_missing_on_disk(backend, migrations, modules: list[str], todo: list, everything: bool) -> None:
    """yoyo rolls back the newest migration it has a file for: with a newer one applied but missing from
    disk it would undo the wrong one (planning_0001's DROP SCHEMA under a planning_0003 it cannot see)."""
    conn = backend.connection
    applied = dict(conn.execute(sql.SQL("SELECT migration_id, applied_at_utc FROM {}").format(
        sql.Identifier(backend.migration_table))).fetchall())
    module_by_file: dict[str, str] = {}
    if fetch_one(conn.execute("SELECT to_regclass('dbtool.applied_file')"))[0]:
        module_by_file = dict(conn.execute("SELECT DISTINCT migration_id, module FROM dbtool.applied_file").fetchall())
    on_disk = {m.id for m in migrations}
    for module in modules:
        missing = {mid: when for mid, when in applied.items()
                   if module_by_file.get(mid, mid.split("_", 1)[0]) == module and mid not in on_disk}
        picks = [m.id for m in todo if module_of(m) == module]
        if missing and picks and not everything:  # only one newer than what would be rolled back matters
            missing = {mid: when for mid, when in missing.items() if when >= applied[picks[0]]}
        if missing:
            names = ", ".join(sorted(missing, key=lambda mid: missing[mid], reverse=True))
            under = f"rolling back {picks[0]} under it" if picks else "rolling back"
            raise MigrationError(f"cannot roll back {module}: migration {names} is applied to this database but "
                                 f"not on disk (migrations/{module}/), so its rollback is unknown and {under} "
                                 "could destroy what it built; nothing was rolled back (restore the file first)")


def _preview_rollback(backend, todo: list) -> DropPlan:
    """Run the rollback in a transaction that is rolled back: what does it drop?"""
    modules = sorted({module_of(m) for m in todo})
    plan = DropPlan("rollback", modules, [m.id for m in todo])
    if not todo:
        return plan
    with backend.copy() as sim, sim.transaction(rollback_on_exit=True):
        conn = sim.connection
        outside, tables = outside_dependents(conn, modules), _module_tables(conn, modules)
        for m in todo:
            if not m.use_transactions:  # cannot run inside a transaction block: not tried
                plan.unpreviewed.append(m.id)
                continue
            try:
                m.process_steps(sim, "rollback")
            except DbtoolError:
                raise
            except psycopg.Error as exc:
                raise MigrationError(f"rollback of {m.id} failed: {first_line(exc)}; nothing was rolled back",
                                     sqlstate=exc.sqlstate) from None
            except BaseException as exc:  # its own code: SystemExit(0) included
                if isinstance(exc, KeyboardInterrupt) and not _raised_by(exc, m):
                    raise
                raise MigrationError(f"rollback of {m.id} ({_rel(m.path)}) failed: {_why(exc)}; nothing was rolled "
                                     "back") from None
        gone = _vanished(conn, outside + tables)
    plan.tables = [t.name for t in tables if t.key in gone]
    plan.outside = outside if plan.unpreviewed else [d for d in outside if d.key in gone]
    return plan


def _rollback_one(backend, migration, allowed: set) -> None:
    """yoyo's rollback_one, with a check inside the migration's transaction: an object outside the module
    that the plan did not name (created since) is not dropped; the seed's records of dropped tables go."""
    backend.ensure_internal_schema_updated()
    schemas = [module_of(migration)]
    with backend.copy() as mb:
        if migration.use_transactions:
            with mb.transaction():
                before = outside_dependents(mb.connection, schemas)
                migration.process_steps(mb, "rollback")
                gone = _vanished(mb.connection, before)
                _refuse_unconfirmed([d for d in before if d.key in gone], allowed, "rollback")
                seed.forget_dropped(mb.connection)
        else:
            migration.process_steps(mb, "rollback")
    backend.log_migration(migration, "rollback")
    with backend.transaction():
        backend.unmark_one(migration, log=False)


def _run(fn, migration, watch: BlockerWatch) -> None:
    """Run one migration; any failure is one line naming it (and, for a lock wait, who was in the way)."""
    left = ("nothing was applied" if migration.use_transactions
            else "it is not transactional: what ran before the failure stays applied")
    try:
        fn(migration)
    except MigrationError as exc:
        if exc.sqlstate in LOCK_WAITS:
            raise MigrationError(f"{exc}; {watch.describe()}", sqlstate=exc.sqlstate) from None
        raise
    except DbtoolError:
        raise
    except psycopg.Error as exc:
        blocked = f"; {watch.describe()}" if exc.sqlstate in LOCK_WAITS else ""
        raise MigrationError(f"migration {migration.id} failed: {first_line(exc)}{blocked}; {left}",
                             sqlstate=exc.sqlstate) from None
    except BaseException as exc:  # the migration's own code: an exception, SystemExit, its own KeyboardInterrupt
        if isinstance(exc, KeyboardInterrupt) and not _raised_by(exc, migration):
            raise  # Ctrl-C
        raise MigrationError(f"migration {migration.id} ({_rel(migration.path)}) failed: {_why(exc)}; {left}"
                             ) from None


# Whose is yoyo's lock row? dbtool writes minus its OS pid (its sessions say `pid=N` in application_name);
# yoyo, other tools and older dbtool runs write the client's OS pid, of a machine the server cannot see.
def _holders(row_pid: int, own_app: str, conn) -> list[Session]:
    """The sessions of this database that may belong to the process holding yoyo's lock row."""
    others = [s for s in sessions(conn) if s.app != own_app]
    if row_pid < 0:
        return [s for s in others if s.dbtool and s.dbtool[1] == -row_pid]
    return [s for s in others if s.dbtool is None or s.dbtool[1] == row_pid]


def _wait_for_yoyo_lock(backend, own_app: str, timeout: float, say: Say) -> None:
    """A yoyo lock row is cleared only when no session that could be its holder is connected (a run that
    holds it keeps a session open until it removes it); otherwise wait for it to go, up to `timeout`."""
    conn, table = backend.connection, sql.Identifier(backend.lock_table)
    started, told = time.monotonic(), None
    while row := conn.execute(sql.SQL("SELECT pid, ctime FROM {}").format(table)).fetchone():
        pid, ctime = row
        who = f"dbtool pid {-pid}" if pid < 0 else f"pid {pid}"
        holders = _holders(pid, own_app, conn)
        if not holders:
            gone = conn.execute(sql.SQL("DELETE FROM {} WHERE pid = %s AND ctime IS NOT DISTINCT FROM %s").format(
                table), (pid, ctime)).rowcount
            if gone:
                say(f"cleared a stale yoyo lock left by {who} at {ctime}: no session that could hold it is "
                    "connected to this database")
            continue
        listed = "; ".join(str(s) for s in holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        if (pid, ctime) != told:
            say(f"waiting up to {timeout:g}s for yoyo's lock, taken at {ctime} by {who}, which may still be migrating "
                f"this database: {len(holders)} session(s) could be it: {listed}")
            told = (pid, ctime)
        if time.monotonic() - started >= timeout:
            raise LockTimeout(
                f"gave up after {timeout:g}s waiting for yoyo's lock, taken at {ctime} by {who} (a yoyo run or "
                f"another tool may be migrating this database; sessions that could hold it: {listed}); nothing was "
                f"changed. If none of them is migrating, remove it: DELETE FROM {backend.lock_table} WHERE pid = {pid}")
        time.sleep(0.2)


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
    from . import lock_wait

    migrations = load(modules)
    with target.connect(application_name=application_name("status")) as conn:
        wait = lock_wait.seconds()  # DBTOOL_READ_LOCK_TIMEOUT: never wait without end behind a lock on yoyo's table
        lock_wait.limit_session(conn, wait)
        with lock_wait.naming_blockers(conn, wait, command="status", schemas=modules):
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
