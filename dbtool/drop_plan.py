"""What a rollback or reset drops, found before anything changes: the plan it names, asks about, and holds to.

Objects outside the modules that DROP ... CASCADE would take with them come from pg_depend; a rollback's
tables from trying it in a transaction that is rolled back (migrate.preview_rollback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import psycopg

from .errors import UsageError

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
    reapplies: list[str] = field(default_factory=list)  # redo, reset --recreate: migrations applied afterwards

    def lines(self) -> list[str]:
        """What it does, one line each, for the confirmation and --dry-run."""
        lines = [f"  rolls back {', '.join(self.migrations)}"] if self.migrations else []
        lines += [f"  drops schema {self.modules[0]} and all its data"] if self.command == "reset" else []
        lines += [f"  drops {len(self.tables)} table(s) and every row in them: {', '.join(self.tables)}"] \
            if self.tables else []
        lines += [f"  also drops, outside the module: {', '.join(str(d) for d in self.outside)}"] if self.outside \
            else []
        lines += [f"  cannot tell beforehand what {', '.join(self.unpreviewed)} drops"] if self.unpreviewed else []
        lines += [f"  then applies {', '.join(self.reapplies)} (from the files as they are now)"] \
            if self.reapplies else []
        return lines


Confirm = Callable[[DropPlan], None]


def outside_dependents(conn: psycopg.Connection, schemas: list[str]) -> list[Dependent]:
    """What DROP SCHEMA ... CASCADE of `schemas` would drop outside them, from pg_depend."""
    return [Dependent((c, o, s), kind, name)
            for c, o, s, kind, name in conn.execute(OUTSIDE_SQL, {"schemas": schemas}).fetchall()]


def module_tables(conn: psycopg.Connection, schemas: list[str]) -> list[Dependent]:
    return [Dependent((c, o, s), kind, name)
            for c, o, s, kind, name in conn.execute(TABLES_SQL, {"schemas": schemas}).fetchall()]


def vanished(conn: psycopg.Connection, objects: list[Dependent]) -> set[tuple[int, int, int]]:
    if not objects:
        return set()
    cols = list(zip(*(d.key for d in objects)))
    return {tuple(r) for r in conn.execute(VANISHED_SQL, [list(c) for c in cols]).fetchall()}


def _listed(objects: list, limit: int = 10) -> str:
    shown = ", ".join(str(o) for o in objects[:limit])
    return shown + (f" and {len(objects) - limit} more" if len(objects) > limit else "")


def refuse_outside(plan: DropPlan, cascade: bool) -> None:
    if plan.outside and not cascade:
        would = "may" if plan.unpreviewed else "would"
        one = len(plan.modules) == 1
        raise UsageError(f"{plan.command} of {', '.join(plan.modules)} {would} also drop {len(plan.outside)} "
                         f"object(s) outside {'the module' if one else 'these modules'} that depend on "
                         f"{'it' if one else 'them'}: {_listed(plan.outside)}; nothing was dropped "
                         "(add --cascade to drop them too)")


def refuse_unconfirmed(dropping: list[Dependent], allowed: set, command: str) -> None:
    new = [d for d in dropping if d.key not in allowed]
    if new:
        raise UsageError(f"{command} would now also drop {_listed(new)} (created since it was listed); "
                         "nothing was dropped: run it again")
