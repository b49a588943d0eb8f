"""Revision targets: which migrations `migrate --to`, `rollback --to` and `migrate --redo` act on.

A module's migrations are ordered as they apply (yoyo's topological order of `__depends__`, file
names breaking ties: NNNN order). Given a migration X of module M:

- `migrate --to X` applies the pending migrations of M up to and including X, and every migration
  they depend on (in any module), in apply order. Other modules are left alone.
- `rollback --to X` rolls back, newest first, the applied migrations of M that come after X, and every
  applied migration (of any module) that depends on X or on one of those. X, what it depends on, and
  other modules' migrations that depend on none of them stay applied.
- `migrate --redo X` rolls back X and applies it again, from the files as they are now: only when X is
  the latest applied migration of M and no applied migration depends on it.

The selection here is pure (ids in, ids out); migrate.py runs it under the lock.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import paths
from .config import Target
from .errors import UsageError
from .settings import DEFAULT_LOCK_TIMEOUT

if TYPE_CHECKING:
    from yoyo.migrations import Migration

    from .drop_plan import DropPlan


def module_of(migration: Migration) -> str:
    return Path(migration.path).parent.name


def in_order(migrations: Iterable[Migration]) -> list[Migration]:
    """The migrations in apply order (dependencies first, then file order)."""
    from yoyo.migrations import topological_sort

    return list(topological_sort(list(migrations)))


def find(migrations: Iterable[Migration], given: str, modules: list[str]) -> Migration:
    """The migration `given` names among `migrations` of `modules`: its id (crm_0002_privileges), its file name
    (crm_0002_privileges.py) or a unique start of its id up to a '_' (crm_0002). Anything else is a usage error
    naming it: unknown, ambiguous, or a migration of a module not asked for."""
    known = list(migrations)
    name = given.strip()
    name = name[:-3] if name.endswith(".py") else name
    exact = [m for m in known if m.id == name] or [m for m in known if m.id.startswith(name + "_")]
    if len(exact) > 1:
        raise UsageError(f"{given!r} names {len(exact)} migrations ({', '.join(m.id for m in exact)}): "
                         "give the whole id")
    if exact and module_of(exact[0]) in modules:
        return exact[0]
    mid, where = (exact[0].id, module_of(exact[0])) if exact else _module_on_disk(name)
    asked = ", ".join(modules)
    if where:
        raise UsageError(f"migration {mid} is in module {where}, not in {asked} (--module); nothing was changed")
    hint = difflib.get_close_matches(name, [m.id for m in known], n=1)
    also = f"; did you mean {hint[0]}?" if hint else ""
    raise UsageError(f"unknown migration {given!r}: no such file in migrations/ of {asked}{also} "
                     "(`dbtool status` lists them); nothing was changed")


def _module_on_disk(name: str) -> tuple[str, str | None]:
    """The id of migration `name` (or `name`_...) and the module whose migrations/ folder holds it, without
    loading it; (name, None) when there is none."""
    return next(((mid, module) for mid, module in on_disk().items() if mid == name or mid.startswith(name + "_")),
                (name, None))


def on_disk() -> dict[str, str]:
    """{migration id: module} of every migration file in migrations/, read from the folder (nothing loaded)."""
    return {path.stem: module for module in paths.modules()
            for path in sorted((paths.migrations_dir() / module).iterdir()) if path.suffix == ".py"}


def dependents(ordered: list[Migration], ids: set[str]) -> set[str]:
    """Every migration of `ordered` (apply order) that depends, directly or not, on one of `ids`."""
    closure = set(ids)
    for m in ordered:
        if any(d is not None and d.id in closure for d in m.depends):
            closure.add(m.id)
    return closure - ids


def ancestors(ordered: list[Migration], ids: set[str]) -> set[str]:
    """Every migration that one of `ids` depends on, directly or not."""
    closure = set(ids)
    for m in reversed(ordered):
        if m.id in closure:
            closure.update(d.id for d in m.depends if d is not None)
    return closure - ids


def up_to(migrations: Iterable[Migration], goal: Migration, applied: set[str]) -> list[Migration]:
    """`migrate --to goal`: the pending migrations of goal's module up to and including it, and the pending ones
    they depend on, in apply order; a usage error when there is none (goal is applied, and all before it)."""
    ordered = in_order(migrations)
    module, at = module_of(goal), ordered.index(goal)
    wanted = {m.id for m in ordered[:at + 1] if module_of(m) == module}
    wanted |= ancestors(ordered, wanted)
    todo = [m for m in ordered if m.id in wanted and m.id not in applied]
    if not todo:
        ahead = [m.id for m in ordered[at + 1:] if module_of(m) == module and m.id in applied]
        more = (f"; {', '.join(ahead)} {'is' if len(ahead) == 1 else 'are'} applied after it (to go back to it: "
                f"dbtool rollback --to {goal.id})") if ahead else ""
        raise UsageError(f"migrate --to {goal.id}: it is already applied, and so is every migration before it{more}; "
                         "nothing was applied")
    return todo


def after(migrations: Iterable[Migration], goal: Migration, applied: set[str]) -> set[str]:
    """`rollback --to goal`: the applied migrations of goal's module after it, and every applied migration that
    depends on goal or on one of them; a usage error when goal itself is not applied."""
    ordered = in_order(migrations)
    if goal.id not in applied:
        raise UsageError(f"rollback --to {goal.id}: it is not applied to this database (pending), so there is "
                         f"nothing to roll back to (`dbtool migrate --to {goal.id}` applies it); nothing was rolled "
                         "back")
    module, at = module_of(goal), ordered.index(goal)
    later = {m.id for m in ordered[at + 1:] if module_of(m) == module}
    return (later | dependents(ordered, later | {goal.id})) & applied


def check_redo(migrations: Iterable[Migration], goal: Migration, applied_newest_first: list[Migration]) -> None:
    """`migrate --redo goal`: refuse unless goal is applied, the latest applied migration of its module, and no
    applied migration depends on it."""
    applied = {m.id for m in applied_newest_first}
    if goal.id not in applied:
        raise UsageError(f"migrate --redo {goal.id}: it is not applied to this database, so there is nothing to "
                         f"redo (`dbtool migrate --to {goal.id}` applies it); nothing was changed")
    module = module_of(goal)
    latest = latest_applied(module, applied_newest_first)  # goal is applied: there is one
    if latest is not goal:
        raise UsageError(f"migrate --redo {goal.id}: {latest.id} is applied after it in module {module}; redo only "
                         f"undoes the latest (roll back to it first: dbtool rollback --to {goal.id}); nothing was "
                         "changed")
    needing = sorted(dependents(in_order(migrations), {goal.id}) & applied)
    if needing:
        raise UsageError(f"migrate --redo {goal.id}: applied migration {', '.join(needing)} depends on it; roll "
                         f"{'it' if len(needing) == 1 else 'them'} back first; nothing was changed")


def latest_applied(module: str, applied_newest_first: list[Migration]) -> Migration:
    """`migrate --redo` without an id: the module's latest applied migration."""
    for m in applied_newest_first:
        if module_of(m) == module:
            return m
    raise UsageError(f"migrate --redo: no migration of {module} is applied to this database, so there is nothing "
                     "to redo; nothing was changed")


def redo(target: Target, modules: list[str], given: str | None, *, say: Callable[[str], None], cascade: bool = False,
         confirm: Callable[[DropPlan], None] | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
         **timeouts) -> list[str]:
    """`migrate --redo`: roll back one migration (`given`, else the latest applied of the one module in `modules`)
    and apply it again, under one hold of the migration lock, with rollback's safety: refused when a newer
    applied migration is missing from disk, or when it would drop objects outside the module (unless `cascade`);
    `confirm(plan)` before anything changes. The ids redone."""
    from . import migrate as mig
    from .drop_plan import refuse_outside

    if given is None and len(modules) != 1:
        raise UsageError("migrate --redo without a migration id needs exactly one --module (its latest applied "
                         "migration is redone)")
    migrations = mig.load(paths.modules())  # an applied migration of any module may depend on it
    goal = find(migrations, given, modules) if given is not None else None
    module = module_of(goal) if goal else modules[0]
    mig.check_files(m for m in migrations if module_of(m) == module)
    mig.preflight(target, [module])
    with mig.locked_backend(target, "migrate", lock_timeout, say, **timeouts) as (backend, watch):
        newest_first = list(backend.to_rollback(migrations))
        goal = goal or latest_applied(module, newest_first)
        check_redo(migrations, goal, newest_first)
        mig.refuse_missing_on_disk(backend, migrations, [module], [goal], False)
        say(f"migrate --redo {goal.id}: rolls back {goal.id}, then applies it again from the files as they are now")
        plan = mig.preview_rollback(backend, [goal])
        plan.command, plan.reapplies = "redo", [goal.id]
        refuse_outside(plan, cascade)
        if confirm:
            confirm(plan)
        mig.redo_one(backend, watch, goal, {d.key for d in plan.outside}, say)
    return [goal.id]
