"""Smoke check: for every table, insert a valid row, read it back, delete it; then roll everything back.

The row is built from the catalog snapshot: required columns get a value of their type (the first
label of an enum or of an IN-list CHECK, the lower bound of a range CHECK), foreign keys point at
the row just inserted into the parent table (tables go parents first), identity columns get an
explicit negative id so no sequence advances (OVERRIDING SYSTEM VALUE: an identity GENERATED ALWAYS
takes it too), generated columns are left to the database. All in one transaction that is rolled
back, each table under its own savepoint: the database is left exactly as it was.

A table without a repository module is smoked through generic statements (and said so). A table
lock held longer than DBTOOL_READ_LOCK_TIMEOUT stops the run naming its holder (exit 1); a table
this role may not use is a refusal (exit 3), after every table's line.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import lock_wait
from .catalog.expected import load_snapshot
from .errors import RefusedError, first_line
from .repo import parents_first, table_names
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
    """A valid row for `t`: required columns filled, single-column foreign keys to the parent rows.

    Generated columns (GENERATED ALWAYS AS (...) STORED) never get a value: the database computes them.
    """
    values: dict[str, Any] = {}
    fk_of = {fk.columns[0]: fk for fk in t.foreign_keys.values() if len(fk.columns) == 1}
    generated = {c.name for c in load_snapshot(t.module).columns(t.module, t.name) if c.generated}
    for col in t.columns:
        c = t.column[col]
        fk = fk_of.get(col)
        if col in generated:
            continue
        if fk and fk.references and fk.references != t.qualified and fk.references in parents:
            values[col] = getattr(parents[fk.references], fk.ref_columns[0])
        elif c.identity:  # explicit id: the identity sequence is not touched (smallint: within its range)
            values[col] = -(n % 30_000) - 1 if c.type == "smallint" else -n
        elif not c.nullable and not c.has_default:
            values[col] = _value(t, col, token, n)
    return values


def insert(conn: psycopg.Connection, t: Table, values: dict[str, Any]) -> Any:
    """Table.insert, but OVERRIDING SYSTEM VALUE when an identity column is given a value: a column
    GENERATED ALWAYS AS IDENTITY refuses one otherwise (and the live table may say ALWAYS where sql/ did not)."""
    if not any(t.column[c].identity for c in values):
        return t.insert(conn, **values)
    cols = [c for c in t.columns if c in values]
    stmt = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) ").format(
        t.ident, sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(sql.Placeholder() * len(cols)))
    params = [Jsonb(values[c]) if t.column[c].is_json and values[c] is not None else values[c] for c in cols]
    return t.one(t.run(conn, stmt + t.returning, params))


def smoke_tables(modules: list[str]) -> dict[str, Table[Any] | str]:
    """{"module.table": its repository Table} in dependency order (parents first). A table without a
    repository module gets a generic Table from the snapshot; one smoke cannot handle, the reason."""
    found: dict[str, Table[Any] | str] = {}
    for m in modules:
        for name in table_names(m):
            module_name = f"dbtool.repo.{m}.{name}"
            try:
                found[f"{m}.{name}"] = importlib.import_module(module_name).T
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                if not any(c.type == "primary key" for c in load_snapshot(m).constraints(m, name)):
                    found[f"{m}.{name}"] = "cannot smoke: no primary key to read the row back by"
                else:
                    found[f"{m}.{name}"] = Table(m, name, SimpleNamespace)
    return parents_first(found)


def run(conn: psycopg.Connection, modules: list[str], *, say=print, lock_timeout: float | None = None) -> list[Result]:
    """Smoke-test every table of `modules`; prints one line per table; always rolls back.

    Raises lock_wait.TableLockTimeout when a table lock is held longer than `lock_timeout` seconds (default
    DBTOOL_READ_LOCK_TIMEOUT), and RefusedError (after the lines) when the server refused this role a table.
    """
    token = "smk" + uuid.uuid4().hex[:6]
    results: dict[str, Result] = {}
    inserted: dict[str, Any] = {}
    refused: list[tuple[str, BaseException]] = []
    chosen = smoke_tables(modules)
    wait = lock_wait.seconds(lock_timeout)

    def failed(name: str, step: str, exc: Exception) -> None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            raise exc  # not this table's fault: the whole run stops, naming who holds the lock
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            refused.append((name, exc))
        results[name] = Result(name, False, f"{step}: {_one_line(exc)}")

    conn.rollback()  # end any transaction the caller left open: ours must be a real BEGIN, not a savepoint
    # One transaction that is always rolled back; each per-table block below is a savepoint inside it,
    # so nothing is ever committed, even when a DELETE silently keeps its row (a trigger returning NULL).
    with lock_wait.naming_blockers(conn, wait, command="smoke", schemas=list(modules), modes=lock_wait.BLOCKS_WRITES), \
            conn.transaction(force_rollback=True):
        lock_wait.set_lock_timeout(conn, wait, local=True)
        for n, (name, t) in enumerate(chosen.items(), start=1):
            if not isinstance(t, Table):
                results[name] = Result(name, False, t)
                continue
            try:
                with conn.transaction():
                    row = insert(conn, t, sample_row(t, inserted, token, 900_000 + n))
                    back = t.get(conn, **{k: getattr(row, k) for k in t.primary_key})
                    if back != row:
                        raise AssertionError(f"read back {back!r} differs from inserted {row!r}")
                inserted[name] = row
            except Exception as exc:  # noqa: BLE001 - reported per table, the run goes on
                failed(name, "insert/read", exc)
        for name in reversed(list(inserted)):
            t, row = chosen[name], inserted[name]
            assert isinstance(t, Table)
            key = {k: getattr(row, k) for k in t.primary_key}
            try:
                with conn.transaction():
                    if t.delete(conn, **key) is None or t.get(conn, **key) is not None:
                        raise AssertionError("row not deleted")
                generic = (f" (no repository module dbtool/repo/{t.module}/{t.name}.py: generic statements)"
                           if t.row is SimpleNamespace else "")
                results[name] = Result(name, True, "insert, read back, delete" + generic)
            except Exception as exc:  # noqa: BLE001
                failed(name, "delete", exc)
    ordered = [results[n] for n in chosen]
    for r in ordered:
        say(f"{'ok  ' if r.ok else 'FAIL'} {r.table:32} {r.detail}")
    if refused:
        table, why = refused[0]
        raise RefusedError(f"the server refused this role: {first_line(why)} (in {table}; "
                           f"{len(refused)} of {len(ordered)} table(s) refused: smoke needs USAGE on the schemas "
                           "and INSERT, SELECT, DELETE on their tables)")
    return ordered


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]
