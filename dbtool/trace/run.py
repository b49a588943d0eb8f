"""trace end to end: what to run (the pending migrations, or the files given, in their migrations), the copy,
then every statement, in the transaction shape dbtool's migrate gives it, each followed by the probes.

The shape, as migrate (yoyo + migration_steps.ApplyFiles) runs it:
- a transactional migration: one transaction for all its files and steps; a file's `-- lock_timeout:` /
  `-- statement_timeout:` set with set_config(..., is_local) for that file, then reset;
- a migration that is not transactional: each statement on its own (autocommit), a file's directives set
  for the session, a `-- transactional: false` file with lock_timeout 0 unless it says otherwise;
- the session's lock_timeout and statement_timeout are migrate's (--ddl-lock-timeout, --statement-timeout).
A statement of a migration that is not transactional runs in a transaction of its own here too (what
autocommit gives it), so that its locks can be read before they go; one PostgreSQL refuses in a
transaction block (SQLSTATE 25001: CONCURRENTLY, VACUUM) runs as it is, watched (probe.Watcher).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from .. import migration_steps, paths
from ..config import Target
from ..errors import DbtoolError, MigrationError, UsageError, first_line
from ..fingerprint import BOOKKEEPING_DDL
from ..lint.engine import shown  # one spelling of a path for lint and trace
from ..lock import application_name
from ..migration_steps import ApplyFiles, SqlFile, Statement, describe_error, load_file, split_statements
from . import probe
from .model import ACCESS_EXCLUSIVE, MODES, Batches, Failure, Hold, Lock, MigrationTrace, StatementTrace, Trace

Say = Callable[[str], None]
OUTCOME = "on the scratch copy; the target is unchanged"


@dataclass
class Unit:
    """One statement (or one Python step) to run and probe."""

    file: str
    line: int | None
    text: str
    path: Path | None = None
    stmt: Statement | None = None
    call: Callable[[psycopg.Connection], object] | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class Block:
    """Units that share the settings a file's directives give them."""

    units: list[Unit]
    settings: dict[str, str] = field(default_factory=dict)
    not_transactional: str | None = None   # the shown path of a `-- transactional: false` file
    prelude: str | None = None  # run first, not reported: dbtool's bookkeeping DDL, as ApplyFiles runs it
    batch: int | None = None    # `-- batch: N`: its one statement again and again, N rows a transaction


@dataclass
class Plan:
    id: str
    module: str | None
    transactional: bool
    blocks: list[Block]
    note: str | None = None


def _file_block(f: SqlFile) -> Block:
    settings: dict[str, str] = {k: f.directives[k] for k in ("lock_timeout", "statement_timeout") if k in f.directives}
    if not f.transactional:
        settings.setdefault("lock_timeout", "0")  # as ApplyFiles: a concurrent build waits for old transactions
    where = shown(f.path)
    units = [Unit(where, s.line, s.text, f.path, s) for s in f.statements]
    return Block(units, settings, None if f.transactional else where, batch=f.batch)


def _steps(items) -> list:
    out = []
    for wrapper in items:
        step = getattr(wrapper, "step", wrapper)
        out += _steps(step.steps) if isinstance(getattr(step, "steps", None), list) else [step]
    return out


def plan_migration(migration, only: set[Path] | None = None) -> Plan:
    """The blocks of a yoyo migration, in step order; with `only`, just those of its files (nothing else)."""
    from .. import migrate as migrate_lib

    blocks: list[Block] = []
    where = shown(Path(migration.path))
    for n, step in enumerate(_steps(migration.steps), 1):
        apply = getattr(step, "_apply", None)
        if isinstance(apply, ApplyFiles):
            mine = [_file_block(f) for f in apply.load() if only is None or f.path.resolve() in only]
            if mine:
                mine[0].prelude = BOOKKEEPING_DDL
            blocks += mine
        elif only is not None or not apply:
            continue
        elif isinstance(apply, str):
            blocks.append(Block([Unit(f"{where} step {n}", s.line, s.text) for s in split_statements(apply)]))
        else:
            name = getattr(apply, "__qualname__", type(apply).__name__)
            blocks.append(Block([Unit(f"{where} step {n}", None, f"(Python) {name}(conn)", call=apply)]))
    plan = Plan(migration.id, migrate_lib.module_of(migration), bool(migration.use_transactions), blocks)
    for b in blocks:
        if plan.transactional and b.not_transactional:
            raise MigrationError(f"{b.not_transactional} is marked '-- transactional: false': its migration "
                                 f"{migration.id} must set __transactional__ = False")
        if plan.transactional and b.batch:
            raise MigrationError(f"{b.units[0].file} is marked '-- batch: {b.batch}' (each batch commits on its own): "
                                 f"its migration {migration.id} must set __transactional__ = False")
    if only is not None:
        given = sum(1 for b in blocks if b.units and b.units[0].path)
        total = sum(len(getattr(s, "_apply").files) for s in _steps(migration.steps)
                    if isinstance(getattr(s, "_apply", None), ApplyFiles))
        if given < total or len(blocks) < len(_steps(migration.steps)):
            plan.note = "only the files given, not the whole migration"
    return plan


def pending_plans(target: Target, modules: list[str], say: Say) -> list[Plan]:
    """The migrations not yet applied on the target, in the order migrate applies them."""
    from yoyo.migrations import topological_sort

    from .. import migrate as migrate_lib

    states = migrate_lib.status(target, modules)
    applied = {s.id for s in states if s.applied}
    pending = list(topological_sort(m for m in migrate_lib.load(modules) if m.id not in applied))
    say(f"trace: {len(pending)} pending migration(s)" + (f": {', '.join(m.id for m in pending)}" if pending else ""))
    return [plan_migration(m) for m in pending]


def file_plans(given: list[Path]) -> list[Plan]:
    """The files given, each in its migration (in migrate's order, only the files given); a file no migration
    applies runs as a migration of its own, transactional unless it says `-- transactional: false`."""
    from .. import migrate as migrate_lib
    from ..lint.context import placements
    from ..lint.engine import expand

    files, _notes = expand(given)
    if not files:
        raise UsageError("nothing to trace: no .sql file in " + ", ".join(map(str, given)))
    where = placements(paths.modules())
    wanted = {f.resolve() for f in files}
    by_id = {m.id: m for m in migrate_lib.load(paths.modules())}
    plans: list[Plan] = []
    done: set[str] = set()
    for f in files:
        place = where.get(f.resolve())
        if place is None or place.migration is None:
            loaded = load_file(f, "(none)")
            plans.append(Plan(shown(f), None, loaded.transactional, [_file_block(loaded)],
                              "a file no migration applies"))
        elif place.migration not in done:
            done.add(place.migration)
            plans.append(plan_migration(by_id[place.migration], wanted & set(place.files)))
    order = {m: i for i, m in enumerate(by_id)}
    return sorted(plans, key=lambda p: order.get(p.id, len(order)))  # files no migration applies last, as given


class Failed(Exception):
    def __init__(self, failure: Failure, partial: MigrationTrace):
        super().__init__(failure.message)
        self.failure, self.partial = failure, partial


class Runner:
    """One session on the copy runs every statement (with migrate's timeouts); a second watches when needed."""

    def __init__(self, scratch: Target, lock_timeout: str, statement_timeout: str):
        self.scratch = scratch
        self.lock_timeout, self.statement_timeout = lock_timeout, statement_timeout
        self.conn = scratch.connect(autocommit=True, application_name=application_name("trace"),
                                    options=f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout}")
        self.monitor: psycopg.Connection | None = None
        self.names = probe.Names()

    def close(self) -> None:
        for c in (self.conn, self.monitor):
            if c is not None:
                c.close()

    def _watcher(self) -> probe.Watcher:
        if self.monitor is None:
            self.monitor = self.scratch.connect(autocommit=True, application_name=application_name("trace watch"))
        return probe.Watcher(self.monitor)

    def _locks(self, oids_modes: set[tuple[int, str]]) -> list[Lock]:
        names = self.names.resolve(self.conn, {o for o, _m in oids_modes})
        locks = {Lock(names[o].name, names[o].kind, m, names[o].table) for o, m in oids_modes if o in names}
        strength = {m: i for i, m in enumerate(MODES)}
        return sorted(locks, key=lambda x: (-strength.get(x.mode, -1), x.kind != "table", x.relation))

    def _fail(self, plan: Plan, unit: Unit, exc: BaseException, partial: MigrationTrace) -> Failed:
        if isinstance(exc, psycopg.Error) and unit.stmt is not None and unit.path is not None:
            message = describe_error(unit.path, unit.stmt, exc, plan.id, OUTCOME)
            if plan.module is None and plan.id == unit.file:  # a file no migration applies
                message = message.replace(f"(migration {plan.id}; ", "(", 1)
        elif isinstance(exc, DbtoolError):
            message = f"{unit.where}: {exc}"
        else:
            why = first_line(exc) if isinstance(exc, psycopg.Error) else f"{type(exc).__name__}: {first_line(exc)}"
            message = f"{unit.where}: {why} (migration {plan.id}; {OUTCOME})"
        return Failed(Failure(unit.file, unit.line, plan.id, message), partial)

    def _rollback(self) -> None:
        """End what a failed statement left (a broken connection is the failure's own story)."""
        try:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    def _execute(self, unit: Unit) -> None:
        if unit.call is not None:
            unit.call(self.conn)
        else:
            self.conn.execute(unit.text)

    def _settings(self, block: Block) -> tuple[str, str]:
        return (block.settings.get("lock_timeout", self.lock_timeout),
                block.settings.get("statement_timeout", self.statement_timeout))

    def _statement(self, unit: Unit, block: Block, seconds: float, locks: list[Lock], changes: probe.Changes,
                   observed: str) -> StatementTrace:
        lt, st = self._settings(block)
        return StatementTrace(unit.file, unit.line, " ".join(unit.text.split()), seconds, lt, st, locks, observed,
                              changes.rewritten, changes.created, changes.dropped, changes.constraints)

    def run(self, plan: Plan) -> MigrationTrace:
        return self._in_transaction(plan) if plan.transactional else self._one_by_one(plan)

    def _in_transaction(self, plan: Plan) -> MigrationTrace:
        conn, mt = self.conn, MigrationTrace(plan.id, plan.module, True, note=plan.note)
        conn.execute("BEGIN")
        before = first = probe.snapshot(conn)
        self.names.learn(before)
        seen: set[tuple[int, str]] = set()
        took: dict[int, int] = {}  # relation oid -> index of the statement that first showed ACCESS EXCLUSIVE
        for block in plan.blocks:
            if block.prelude:
                conn.execute(block.prelude)
                seen |= probe.held_locks(conn)
                before = probe.snapshot(conn)
                self.names.learn(before)
            for key, value in block.settings.items():
                conn.execute("SELECT set_config(%s, %s, true)", (key, value))
            for unit in block.units:
                t0 = time.perf_counter()
                try:
                    self._execute(unit)
                except Exception as exc:
                    self._rollback()
                    raise self._fail(plan, unit, exc, mt) from None
                seconds = time.perf_counter() - t0
                held = probe.held_locks(conn)
                new = held - seen
                seen |= held
                after = probe.snapshot(conn)
                self.names.learn(after)
                for oid, mode in new:
                    if mode == ACCESS_EXCLUSIVE:
                        took.setdefault(oid, len(mt.statements))
                mt.statements.append(self._statement(unit, block, seconds, self._locks(new),
                                                     probe.changes(before, after), "transaction"))
                before = after
            for key in block.settings:
                conn.execute(sql.SQL("SET LOCAL {} TO DEFAULT").format(sql.Identifier(key)))
        t0 = time.perf_counter()
        conn.execute("COMMIT")
        mt.commit_seconds = time.perf_counter() - t0
        names = self.names.resolve(conn, set(took))
        for oid, i in took.items():
            if oid in names:
                r = names[oid]
                seconds = sum(s.seconds for s in mt.statements[i:]) + mt.commit_seconds
                mt.holds.append(Hold(r.name, r.kind, seconds, mt.statements[i].where, len(mt.statements) - i,
                                     oid not in first.rels, r.table))
        mt.holds.sort(key=lambda h: (h.created_here, -h.seconds, h.relation))
        return mt

    def _one_by_one(self, plan: Plan) -> MigrationTrace:
        conn, mt = self.conn, MigrationTrace(plan.id, plan.module, False, note=plan.note)
        before = probe.snapshot(conn)
        self.names.learn(before)
        for block in plan.blocks:
            if block.prelude:
                conn.execute(block.prelude)
                before = probe.snapshot(conn)
                self.names.learn(before)
            for key, value in block.settings.items():
                conn.execute("SELECT set_config(%s, %s, false)", (key, value))
            for unit in block.units:
                if block.batch:
                    seconds, commit, held, batched = self._batches(plan, unit, block.batch, mt)
                    observed = "transaction"
                else:
                    seconds, commit, held, observed = self._alone(plan, unit, before, mt)
                    batched = None
                after = probe.snapshot(conn)
                self.names.learn(after)
                stmt = self._statement(unit, block, seconds, self._locks(held), probe.changes(before, after), observed)
                stmt.batches = batched
                mt.statements.append(stmt)
                mt.commit_seconds += commit
                names = self.names.resolve(conn, {o for o, m in held if m == ACCESS_EXCLUSIVE})
                for oid, r in sorted(names.items(), key=lambda kv: kv[1].name):
                    once = batched.longest_seconds if batched else seconds + commit  # a batch holds it for itself
                    mt.holds.append(Hold(r.name, r.kind, once, stmt.where, 1, oid not in before.rels, r.table))
                before = after
            for key in block.settings:
                conn.execute(sql.SQL("SET {} TO DEFAULT").format(sql.Identifier(key)))
        mt.holds.sort(key=lambda h: (h.created_here, -h.seconds, h.relation))
        return mt

    def _batches(self, plan: Plan, unit: Unit, size: int,
                 mt: MigrationTrace) -> tuple[float, float, set[tuple[int, str]], Batches]:
        """A `-- batch: N` file's statement as ApplyFiles runs it: each run a transaction of its own with the batch
        size set, until a run changes no row. The locks of every batch; ACCESS EXCLUSIVE held for the longest."""
        conn, setting = self.conn, migration_steps.BATCH_SETTING
        seconds = commits = longest = 0.0
        held: set[tuple[int, str]] = set()
        count = rows = 0
        while True:
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT set_config(%s, %s, true)", (setting, str(size)))
                t0 = time.perf_counter()
                cur = conn.execute(unit.text)
                took = time.perf_counter() - t0
                changed, tag = cur.rowcount, (cur.statusmessage or "").partition(" ")[0]
                if tag not in ("UPDATE", "DELETE", "INSERT", "MERGE") or changed > size:
                    why = (f"a '-- batch:' statement is an UPDATE, DELETE, INSERT or MERGE, this one is "
                           f"{tag or 'empty'}" if changed <= size else
                           f"one batch changed {changed} rows, more than '-- batch: {size}'")
                    raise MigrationError(f"{why} (migration {plan.id}; {OUTCOME})")
                held |= probe.held_locks(conn)
            except Exception as exc:
                self._rollback()
                raise self._fail(plan, unit, exc, mt) from None
            t1 = time.perf_counter()
            conn.execute("COMMIT")
            commit = time.perf_counter() - t1
            seconds, commits, longest = seconds + took, commits + commit, max(longest, took + commit)
            if changed <= 0:
                break
            count, rows = count + 1, rows + changed
        return seconds, commits, held, Batches(size, count, rows, longest)

    def _alone(self, plan: Plan, unit: Unit, before: probe.Snapshot,
               mt: MigrationTrace) -> tuple[float, float, set[tuple[int, str]], str]:
        """Run one statement in a transaction of its own, or watched when it cannot run in one: (seconds,
        commit seconds, locks, how they were observed)."""
        conn = self.conn
        if unit.call is None:
            conn.execute("BEGIN")
            t0 = time.perf_counter()
            try:
                self._execute(unit)
            except psycopg.errors.ActiveSqlTransaction:  # "cannot run inside a transaction block": nothing ran
                conn.execute("ROLLBACK")
            except Exception as exc:
                self._rollback()
                raise self._fail(plan, unit, exc, mt) from None
            else:
                seconds = time.perf_counter() - t0
                held = probe.held_locks(conn)
                t1 = time.perf_counter()
                conn.execute("COMMIT")
                return seconds, time.perf_counter() - t1, held, "transaction"
        watched = self._watcher().run(conn, lambda: self._execute(unit), before.tables())
        if watched.error is not None:
            self._rollback()
            raise self._fail(plan, unit, watched.error, mt)
        return watched.seconds, 0.0, watched.locks, "sampled"


def trace(target: Target, *, files: list[Path], pending: bool, modules: list[str], rows: int, lock_timeout: str,
          statement_timeout: str, say: Say) -> Trace:
    """Trace the pending migrations of `modules` (or the files given) on a scratch copy of the target."""
    from . import rows as rows_lib
    from .copy import scratch_copy

    started = time.perf_counter()
    plans = pending_plans(target, modules, say) if pending else file_plans(files)
    result = Trace(target.display(), lock_timeout, statement_timeout)
    if not plans:
        return result
    with scratch_copy(target, say=say) as (scratch, info):
        result.copy = info
        if rows:
            with scratch.connect(application_name=application_name("trace fill")) as conn:
                schemas = [r[0] for r in conn.execute(
                    "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY 1",
                    (paths.modules(),)).fetchall()]
                filled = rows_lib.fill(conn, schemas, rows, say=say)
            info.rows, info.filled, info.fill_seconds = rows, filled.rows, filled.seconds
            info.notes += filled.notes
            for note in filled.notes:
                say(f"trace: {note}")
        runner = Runner(scratch, lock_timeout, statement_timeout)
        try:
            result.server_version = runner.conn.info.server_version
            for plan in plans:
                try:
                    result.migrations.append(runner.run(plan))
                except Failed as failed:
                    result.migrations.append(failed.partial)
                    result.failure = failed.failure
                    break
        finally:
            runner.close()
    result.seconds = time.perf_counter() - started
    return result
