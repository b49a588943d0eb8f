"""Smoke check: for every table, insert a valid row, read it back, delete it; then roll everything back.

The row is built from the catalog snapshot: required columns get a value of their type (the first
label of an enum or of an IN-list CHECK, the lower bound of a range CHECK), foreign keys point at
the row just inserted into the parent table (tables go parents first), identity columns get an
explicit negative id so no sequence advances. All in one transaction that is rolled back, each
table under its own savepoint: the database is left exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from .catalog.expected import load_snapshot
from .repo import tables
from .repo._table import Table

# Values no type or CHECK reading can derive (a regular-expression CHECK).
OVERRIDES: dict[str, Any] = {"crm.reco_run.config_hash": "0" * 64}

_FIRST_LABEL = re.compile(r"ARRAY\['((?:[^']|'')*)'")
_LOWER_BOUND = re.compile(r">= \(?(-?\d+(?:\.\d+)?)\)?")


@dataclass(frozen=True)
class Result:
    table: str
    ok: bool
    detail: str


def _checks(module: str, table: str) -> dict[str, str]:
    return {c.columns[0]: c.definition for c in load_snapshot(module).constraints(module, table)
            if c.type == "check" and len(c.columns) == 1}


def _value(t: Table, col: str, token: str, n: int) -> Any:
    name = f"{t.qualified}.{col}"
    if name in OVERRIDES:
        return OVERRIDES[name]
    check = _checks(t.module, t.name).get(col, "")
    if m := _FIRST_LABEL.search(check):
        return m.group(1).replace("''", "'")
    ctype = t.column[col].type
    enums = load_snapshot(t.module).enums()
    if ctype in enums:
        return enums[ctype].labels[0]
    low = _LOWER_BOUND.search(check)
    if ctype in ("integer", "bigint", "smallint"):
        return int(float(low.group(1))) if low else 1
    if ctype.startswith("numeric") or ctype in ("double precision", "real"):
        return Decimal(low.group(1)) if low else Decimal(1)
    if m := re.match(r"character varying\((\d+)\)|character\((\d+)\)", ctype):
        return token[: int(m.group(1) or m.group(2))]
    if ctype in ("text", "character varying"):
        return token
    if ctype == "boolean":
        return True
    if ctype == "date":
        return dt.date(1970, 1, 1) + dt.timedelta(days=n)  # far from real data: unique dates do not collide
    if ctype.startswith("timestamp"):
        return dt.datetime.now(dt.timezone.utc)
    if ctype in ("json", "jsonb"):
        return {}
    if ctype == "uuid":
        return uuid.uuid4()
    raise ValueError(f"smoke: no sample value for {name} ({ctype})")


def sample_row(t: Table, parents: dict[str, Any], token: str, n: int) -> dict[str, Any]:
    """A valid row for `t`: required columns filled, single-column foreign keys to the parent rows."""
    values: dict[str, Any] = {}
    fk_of = {fk.columns[0]: fk for fk in t.foreign_keys.values() if len(fk.columns) == 1}
    for col in t.columns:
        c = t.column[col]
        fk = fk_of.get(col)
        if fk and fk.references and fk.references != t.qualified and fk.references in parents:
            values[col] = getattr(parents[fk.references], fk.ref_columns[0])
        elif c.identity:
            values[col] = -n  # explicit id: the identity sequence is not touched
        elif not c.nullable and not c.has_default:
            values[col] = _value(t, col, token, n)
    return values


def run(conn: psycopg.Connection, modules: list[str], *, say=print) -> list[Result]:
    """Smoke-test every table of `modules`; prints one line per table; always rolls back."""
    token = "smk" + uuid.uuid4().hex[:6]
    results: dict[str, Result] = {}
    inserted: dict[str, Any] = {}
    chosen = tables(modules)
    conn.rollback()  # end any transaction the caller left open: ours must be a real BEGIN, not a savepoint
    # One transaction that is always rolled back; each per-table block below is a savepoint inside it,
    # so nothing is ever committed, even when a DELETE silently keeps its row (a trigger returning NULL).
    with conn.transaction(force_rollback=True):
        for n, (name, t) in enumerate(chosen.items(), start=1):
            try:
                with conn.transaction():
                    row = t.insert(conn, **sample_row(t, inserted, token, 900_000 + n))
                    back = t.get(conn, **{k: getattr(row, k) for k in t.primary_key})
                    if back != row:
                        raise AssertionError(f"read back {back!r} differs from inserted {row!r}")
                inserted[name] = row
            except Exception as exc:  # noqa: BLE001 - reported per table, the run goes on
                results[name] = Result(name, False, f"insert/read: {_one_line(exc)}")
        for name in reversed(list(inserted)):
            t, row = chosen[name], inserted[name]
            key = {k: getattr(row, k) for k in t.primary_key}
            try:
                with conn.transaction():
                    if t.delete(conn, **key) is None or t.get(conn, **key) is not None:
                        raise AssertionError("row not deleted")
                results[name] = Result(name, True, "insert, read back, delete")
            except Exception as exc:  # noqa: BLE001
                results[name] = Result(name, False, f"delete: {_one_line(exc)}")
    ordered = [results[n] for n in chosen]
    for r in ordered:
        say(f"{'ok  ' if r.ok else 'FAIL'} {r.table:32} {r.detail}")
    return ordered


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]
