"""yoyo behind our own lock: migrate, status, rollback, reset, dry run (revision targets and redo:
revisions.py; what a rollback drops: drop_plan.py).

yoyo keeps the history (_yoyo_migration); we add the advisory lock, timeouts,
file checksums and one-line errors.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
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
from yoyo.migrations import Migration, get_migration_hash
from yoyo.topologicalsort import CycleError
from yoyo.topologicalsort import topological_sort as cycle_free_order

from . import paths, progress, seed, settings
from .config import Target, first_line
from .drop_plan import (
    Confirm,
    DropPlan,
    module_tables,
    outside_dependents,
    refuse_outside,
    refuse_unconfirmed,
    vanished,
)
from .errors import DbtoolError, MigrationError, RefusedError, UsageError
from .fetch import fetch_one
from .fingerprint import record_run
from .history import read_history, reading, refuse_unreadable
from .lock import (
    APP_NAME,
    BlockerWatch,
    LockTimeout,
    Session,
    application_name,
    end_stale_sessions,
    migration_lock,
    sessions,
)
from .migration_steps import TIMEOUT_VALUE, ApplyFiles, check_regular
from .paths import check_modules  # noqa: F401 (callers use migrate.check_modules)
from .revisions import module_of
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

    # yoyo's log row, and dbtool.migration_log's (who: this run's host and pid), on this backend's connection: in
    # the migration's transaction when the caller opened one (_apply_one, _rollback_one).
    def log_migration(self, migration, operation):
        data = self.get_log_data(migration, operation)
        self.execute(self.format_sql(self.log_migration_sql), data)
        who = APP_NAME.match(self.app_name)
        if who:
            record_run(self.connection, yoyo_log_id=data["id"], migration_id=migration.id, module=module_of(migration),
                       operation=operation, command=who.group(1), host=who.group(2), pid=int(who.group(3)))


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


# yoyo registers every Migration in one class-level dict and resolves __depends__ through it: two threads loading
# at once (a fleet run, dbtool/fleet) would tie one's migrations to the other's objects. One load at a time.
_LOADING = threading.Lock()


def load(modules: list[str]):
    """Read and check every migration of `modules`, before any lock is taken: a problem is one line naming the
    file (exit 1), whatever the file does (a syntax error, bad bytes, `raise SystemExit(0)`, a cycle)."""
    with _LOADING:
        return _load(modules)


def _load(modules: list[str]):
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


def file_steps(migration) -> list[ApplyFiles]:
    return [s._apply for s in _steps(migration) if isinstance(getattr(s, "_apply", None), ApplyFiles)]


def files_of(migration) -> list:
    return [p for step in file_steps(migration) for p in step.paths]


def check_files(migrations) -> None:
    """Every file the migrations apply is a regular file: a FIFO read under the lock would hold it forever."""
    for m in migrations:
        for path in files_of(m):
            check_regular(path, m.id)


def _steps(migration):
    for wrapper in migration.steps:
        yield getattr(wrapper, "step", wrapper)


@dataclass
class Outcome:
    applied: list[str]
    seconds: float


LOCK_WAITS = ("55P03", "57014")  # lock_timeout, statement_timeout (or a cancel): say who was in the way
LOCK_NOT_AVAILABLE = "55P03"      # lock_timeout: what --lock-retries tries again

# --lock-retries: the pause before retry n is drawn between half and all of min(CAP, BASE * 2^(n-1)) seconds
# (exponential backoff with jitter: 0.5-1 s, 1-2 s, 2-4 s, ... at most 30 s), so that two runs blocked by the same
# session do not come back at the same moment, and a blocker that ends soon costs little.
RETRY_BASE = 1.0
RETRY_CAP = 30.0


def retry_delay(attempt: int, rnd: random.Random | None = None) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...) of a migration that failed on lock_timeout."""
    full = min(RETRY_CAP, RETRY_BASE * 2 ** (max(1, attempt) - 1))
    return (rnd or random).uniform(full / 2, full)


@contextmanager
def locked_backend(target: Target, command: str, lock_timeout: float, say: Say, *, terminate_stale: bool = True,
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
            dry_run: bool = False, to: str | None = None, lock_retries: int | None = None, **timeouts) -> Outcome:
    """Apply the pending migrations of `modules`; with `to`, only those up to that one (revisions.up_to). A migration
    that fails on lock_timeout is tried again up to `lock_retries` times (default: DBTOOL_LOCK_RETRIES)."""
    from . import revisions

    retries = settings.get("DBTOOL_LOCK_RETRIES") if lock_retries is None else lock_retries
    migrations = load(modules)
    goal = revisions.find(migrations, to, modules) if to else None
    if dry_run:
        return _dry_run(target, migrations, say, goal)
    check_files(migrations)
    preflight(target, modules)
    started = time.monotonic()
    with locked_backend(target, "migrate", lock_timeout, say, **timeouts) as (backend, watch):
        if goal:
            pending = revisions.up_to(migrations, goal, _applied_ids(backend))
            say(f"migrate --to {goal.id}: applies {', '.join(m.id for m in pending)}")
        else:
            pending = list(backend.to_apply(migrations))
        applied = apply_pending(backend, watch, pending, say, retries=retries)
    return Outcome(applied, time.monotonic() - started)


def apply_pending(backend, watch: BlockerWatch, pending: list, say: Say, *, retries: int = 0) -> list[str]:
    """Apply `pending` in order, each in its own transaction; the ids applied. One that fails on lock_timeout is
    tried again, up to `retries` times, after retry_delay(): a transactional one from the start (its failed attempt
    changed nothing), a non-transactional one by running its idempotent files again (what ran stays, so it resumes)."""
    applied = []
    bar = progress.Progress("migrate", total=len(pending))  # a live line on a terminal only

    def tell(message: str) -> None:  # a line of its own, also while the bar's line is open
        if bar.active:
            bar.stream.write("\n")
        say(message)

    for m in pending:
        watch.check_held()
        t0 = time.monotonic()
        bar.step(f"{m.id} ({len(files_of(m))} files)")
        for step in file_steps(m):
            step.progress = tell
        attempt = 0
        while True:
            watch.blockers = []  # name the session in the way of this attempt, not one seen before
            try:
                _run(lambda mig: _apply_one(backend, mig), m, watch)
                break
            except MigrationError as exc:
                if exc.sqlstate != LOCK_NOT_AVAILABLE or attempt >= retries:
                    bar.abort()
                    if attempt and exc.sqlstate == LOCK_NOT_AVAILABLE:
                        raise MigrationError(f"{exc}; gave up after {attempt} retr{'y' if attempt == 1 else 'ies'} "
                                             "(--lock-retries)", sqlstate=exc.sqlstate) from None
                    raise
                attempt += 1
                delay = retry_delay(attempt)
                bar.abort("lock_timeout")
                say(f"{m.id} failed on lock_timeout, {watch.describe()}; "
                    f"{'trying it again' if m.use_transactions else 'resuming it (its files are idempotent)'} "
                    f"in {delay:.1f}s (retry {attempt} of {retries})")
            except BaseException:
                bar.abort()
                raise
            finally:
                say_notes(m, say)
            _pause(delay, watch)
            bar.count -= 1  # the same step again
            bar.step(f"{m.id} ({len(files_of(m))} files), retry {attempt}")
        bar.done_step()
        applied.append(m.id)
        if not bar.active:
            say(f"applied {m.id} ({len(files_of(m))} files) in {time.monotonic() - t0:.2f}s")
    return applied


def _pause(seconds: float, watch: BlockerWatch) -> None:
    """Sleep before a retry, still holding the migration lock; stop at once if it is lost (or a fleet run's Ctrl-C)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        watch.check_held()
        time.sleep(min(0.2, left))
    watch.check_held()


def say_notes(migration, say: Say) -> None:
    """What applying the migration's files repaired on the way (an INVALID index rebuilt), said once."""
    for note in (n for step in file_steps(migration) for n in step.notes):
        say(note)
    for step in file_steps(migration):
        step.notes.clear()


def _applied_ids(backend) -> set[str]:
    return {row[0] for row in backend.connection.execute(sql.SQL("SELECT migration_id FROM {}").format(
        sql.Identifier(backend.migration_table))).fetchall()}


def rollback(target: Target, modules: list[str], *, say: Say, everything: bool = False, cascade: bool = False,
             confirm: Confirm | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, to: str | None = None,
             dry_run: bool = False, **timeouts) -> Outcome:
    """Roll back the latest migration of each module (every one with `everything`; with `to`, those after that
    one, as revisions.after chooses, from every module's migrations on disk).

    Under the lock, before anything changes: refuse when an applied migration newer than what would be
    rolled back is missing from disk; try the whole rollback in a transaction that is rolled back, to
    learn which tables it drops and which objects outside the modules go with them (refused unless
    `cascade`); then `confirm(plan)`, which may raise to refuse. Each migration then rolls back in one
    transaction that fails if it would drop an outside object the plan did not name. `dry_run`: say the
    plan and stop there.
    """
    from . import revisions

    migrations = load(paths.modules() if to else modules)
    goal = revisions.find(migrations, to, modules) if to else None
    started = time.monotonic()
    done: list[str] = []
    with locked_backend(target, "rollback", lock_timeout, say, **timeouts) as (backend, watch):
        todo = list(backend.to_rollback(migrations))
        floors: dict[str, datetime] = {}
        if goal:
            chosen = revisions.after(migrations, goal, _applied_ids(backend))
            todo = [m for m in todo if m.id in chosen]
            floors[module_of(goal)] = _applied_at(backend, goal.id)
            modules = sorted({module_of(goal)} | {module_of(m) for m in todo})
        elif not everything:
            todo = _latest_per_module(todo)
        refuse_missing_on_disk(backend, migrations, modules, todo, everything, floors)
        if not todo:
            if goal:
                say(f"nothing to roll back: nothing is applied after {goal.id}")
            return Outcome([], time.monotonic() - started)
        say(f"{'would roll back' if dry_run else 'rolls back'}, newest first: {', '.join(m.id for m in todo)}"
            + (f" ({goal.id} stays applied)" if goal else ""))
        plan = preview_rollback(backend, todo)
        if dry_run:
            for line in plan.lines()[1:]:  # its first: the migrations, said above
                say(line)
            if plan.outside and not cascade:
                say("  refused without --cascade: it drops objects outside the module")
            return Outcome([m.id for m in todo], time.monotonic() - started)
        refuse_outside(plan, cascade)
        if confirm:
            confirm(plan)
        allowed = {d.key for d in plan.outside}
        for m in todo:
            watch.check_held()
            _run(lambda mig: _rollback_one(backend, mig, allowed), m, watch)
            done.append(m.id)
            say(f"rolled back {m.id}")
    return Outcome(done, time.monotonic() - started)


def _applied_at(backend, migration_id: str) -> datetime:
    return fetch_one(backend.connection.execute(sql.SQL("SELECT applied_at_utc FROM {} WHERE migration_id = %s").format(
        sql.Identifier(backend.migration_table)), (migration_id,)))[0]


def reset(target: Target, module: str, *, say: Say, cascade: bool = False, confirm: Confirm | None = None,
          recreate: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **timeouts) -> Outcome:
    """Drop a module's schema and forget its migrations (yoyo's records and our checksums); with `recreate`,
    then apply every migration of the module again, holding the same lock.

    Objects outside the schema that depend on it (DROP SCHEMA ... CASCADE would drop them too) are
    refused unless `cascade`; `confirm(plan)` is called, under the lock, before anything changes.
    """
    migrations = load([module])
    ids = [m.id for m in migrations]
    if recreate:
        check_files(migrations)
        preflight(target, [module])
    started = time.monotonic()
    with locked_backend(target, "reset", lock_timeout, say, **timeouts) as (backend, watch):
        conn = backend.connection
        plan = DropPlan("reset", [module], tables=[t.name for t in module_tables(conn, [module])],
                        outside=outside_dependents(conn, [module]), reapplies=ids if recreate else [])
        refuse_outside(plan, cascade)
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
        applied = apply_pending(backend, watch, list(backend.to_apply(migrations)), say) if recreate else []
    if recreate:
        say(f"reset {module}: {len(applied)} migration(s) applied again")
    return Outcome(ids, time.monotonic() - started)


def _drop_module(backend, module: str, ids: list[str], allowed: set) -> int:
    """In one transaction: drop the schema, forget its migrations; how many records were forgotten."""
    conn = backend.connection
    with backend.transaction():
        refuse_unconfirmed(outside_dependents(conn, [module]), allowed, "reset")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(module)))
        # The module's applied migrations missing from disk too: their schema is gone as well, and a
        # record left behind would mark them applied when their file comes back.
        forgotten = conn.execute(sql.SQL("DELETE FROM {} WHERE migration_id = ANY(%s) OR split_part("
                                         "migration_id, '_', 1) = %s RETURNING migration_id").format(
            sql.Identifier(backend.migration_table)), (ids, module)).fetchall()
        for (mid,) in forgotten:  # in the log as yoyo's "unmark", by this reset (dbtool.migration_log)
            backend.log_migration(_Forgotten(mid, get_migration_hash(mid), str(paths.migrations_dir() / module / mid)),
                                  "unmark")
        if fetch_one(conn.execute("SELECT to_regclass('dbtool.applied_file')"))[0]:
            conn.execute("DELETE FROM dbtool.applied_file WHERE module = %s", (module,))
        seed.forget_dropped(conn)
    return len(forgotten)


@dataclass(frozen=True)
class _Forgotten:
    """A migration record reset removes, as yoyo's log_migration needs it (its file may be gone)."""

    id: str
    hash: str
    path: str


def _latest_per_module(todo: list) -> list:
    seen, out = set(), []
    for m in todo:  # to_rollback lists newest first
        if module_of(m) not in seen:
            seen.add(module_of(m))
            out.append(m)
    return out


def refuse_missing_on_disk(backend, migrations, modules: list[str], todo: list, everything: bool,
                            floors: dict[str, datetime] | None = None) -> None:
    """yoyo rolls back the newest migration it has a file for: with a newer one applied but missing from
    disk it would undo the wrong one (planning_0001's DROP SCHEMA under a planning_0003 it cannot see).
    Newer: applied at or after the oldest one rolled back, or after `floors[module]` (rollback --to)."""
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
        floor = (floors or {}).get(module) or (min(applied[p] for p in picks) if picks else None)
        if missing and floor and not everything:  # only one newer than what would be rolled back matters
            missing = {mid: when for mid, when in missing.items() if when >= floor}
        if missing:
            names = ", ".join(sorted(missing, key=lambda mid: missing[mid], reverse=True))
            under = f"rolling back {picks[0]} under it" if picks else "rolling back"
            raise MigrationError(f"cannot roll back {module}: migration {names} is applied to this database but "
                                 f"not on disk (migrations/{module}/), so its rollback is unknown and {under} "
                                 "could destroy what it built; nothing was rolled back (restore the file first)")


def preview_rollback(backend, todo: list) -> DropPlan:
    """Run the rollback in a transaction that is rolled back: what does it drop?"""
    modules = sorted({module_of(m) for m in todo})
    plan = DropPlan("rollback", modules, [m.id for m in todo])
    if not todo:
        return plan
    with backend.copy() as sim, sim.transaction(rollback_on_exit=True):
        conn = sim.connection
        outside, tables = outside_dependents(conn, modules), module_tables(conn, modules)
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
        gone = vanished(conn, outside + tables)
    plan.tables = [t.name for t in tables if t.key in gone]
    plan.outside = outside if plan.unpreviewed else [d for d in outside if d.key in gone]
    return plan


def _rollback_one(backend, migration, allowed: set) -> None:
    """yoyo's rollback_one, with a check inside the migration's transaction: an object outside the module
    that the plan did not name (created since) is not dropped; the seed's records of dropped tables go.
    Its log rows (yoyo's and dbtool's: who) and yoyo's record go in that same transaction."""
    backend.ensure_internal_schema_updated()
    with backend.copy() as mb:
        if migration.use_transactions:
            with mb.transaction():
                rollback_steps(mb, migration, allowed)
                _record(mb, migration, "rollback")
        else:
            migration.process_steps(mb, "rollback")
            with mb.transaction():
                _record(mb, migration, "rollback")


def rollback_steps(mb, migration, allowed: set) -> None:
    """Run a migration's rollback in mb's open transaction, refusing to drop an outside object not `allowed`."""
    before = outside_dependents(mb.connection, [module_of(migration)])
    migration.process_steps(mb, "rollback")
    gone = vanished(mb.connection, before)
    refuse_unconfirmed([d for d in before if d.key in gone], allowed, "rollback")
    seed.forget_dropped(mb.connection)


def _apply_one(backend, migration) -> None:
    """yoyo's apply_one, with its log rows (yoyo's and dbtool's: who) and yoyo's record written in the
    migration's own transaction: a crash leaves it applied and recorded, or neither."""
    backend.ensure_internal_schema_updated()
    with backend.copy() as mb:
        if migration.use_transactions:
            with mb.transaction():
                migration.process_steps(mb, "apply")
                _record(mb, migration, "apply")
        else:
            migration.process_steps(mb, "apply")
            with mb.transaction():
                _record(mb, migration, "apply")


def redo_one(backend, watch: BlockerWatch, migration, allowed: set, say: Say) -> None:
    """Roll back `migration` and apply it again, from its files as they are now. A transactional one does both in
    one transaction: when applying fails, its rollback is undone too and it stays applied as it was."""
    if not migration.use_transactions:
        _run(lambda mig: _rollback_one(backend, mig, allowed), migration, watch)
        say(f"rolled back {migration.id}")
        watch.check_held()
        apply_pending(backend, watch, [migration], say)
        return

    def both(mig) -> None:
        backend.ensure_internal_schema_updated()
        with backend.copy() as mb, mb.transaction():
            rollback_steps(mb, mig, allowed)
            _record(mb, mig, "rollback")
            mig.process_steps(mb, "apply")
            _record(mb, mig, "apply")

    t0 = time.monotonic()
    try:
        _run(both, migration, watch)
    except MigrationError as exc:
        raise MigrationError(f"redo of {migration.id} failed: {exc}; {migration.id} stays applied as it was (its "
                             "rollback was undone too)", sqlstate=exc.sqlstate) from None
    finally:
        say_notes(migration, say)
    say(f"rolled back and applied again {migration.id} ({len(files_of(migration))} files) in "
        f"{time.monotonic() - t0:.2f}s")


def _record(mb, migration, operation: str) -> None:
    """yoyo's log row and dbtool's (who ran it), and yoyo's record of what is applied, in mb's transaction."""
    mb.log_migration(migration, operation)
    if operation == "apply":
        mb.mark_one(migration, log=False)
    else:
        mb.unmark_one(migration, log=False)


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
    return _states(target, load(modules), modules)


def _states(target: Target, migrations, modules: list[str]) -> list[MigrationState]:
    """status() of migrations already loaded."""
    with reading(target, "status", modules) as conn:  # DBTOOL_READ_LOCK_TIMEOUT
        history = read_history(conn)
    refuse_unreadable(history.unreadable, "which migrations ran")
    return [MigrationState(m.id, module_of(m), m.id in history.applied, history.applied.get(m.id),
                           history.changed_files(m.id)) for m in migrations]


def _dry_run(target: Target, migrations, say: Say, goal=None) -> Outcome:
    from . import revisions

    states = _states(target, migrations, sorted({module_of(m) for m in migrations}))
    if goal:
        pending = revisions.up_to(migrations, goal, {s.id for s in states if s.applied})
        say(f"migrate --to {goal.id} would apply {', '.join(m.id for m in pending)}")
    else:
        by_id = {m.id: m for m in migrations}
        pending = [by_id[s.id] for s in states if not s.applied]
    for m in pending:
        say(f"-- pending: {m.id}")
        for f in (f for step in file_steps(m) for f in step.load()):  # one-line errors, as migrate gives
            print(f"-- file: {f.path.relative_to(paths.root())}")
            print(f.data.decode("utf-8-sig"))
    say("see what these take and rewrite: dbtool trace --pending" if pending else "nothing to apply")
    return Outcome([m.id for m in pending], 0.0)
