"""Fill the scratch copy's tables with N generated rows each (`trace --rows N`), so that what a migration
scans, rewrites or validates has something to scan.

One `INSERT ... SELECT ... FROM generate_series(1, N)` per table, parents first, read from the copy's own
catalog (not the snapshot: the copy is the target's schema, drift included):
- a column with a default, an identity or a generated column is left to the database;
- a foreign key's columns take the key of a parent row (row g takes the parent's row (g - 1) % count + 1,
  joined by row_number), so every reference is valid; a self-reference is left NULL;
- other columns get a value of their type built from g (distinct per row, so UNIQUE holds: what still
  collides is skipped by ON CONFLICT DO NOTHING): an enum's labels in turn, a CHECK's IN-list labels in
  turn, numbers within a CHECK's bounds and the type's precision, text within its length (hex: a hash
  CHECK holds), dates, timestamps, uuids, '{}' JSON;
- a CHECK that still fails (named by the server) moves its columns to their next candidate value (a
  constant, another shape, then NULL when the column allows it), and the insert is tried again.
A table that cannot be filled so is left empty and said so. Triggers fire as they would in production.
Then VACUUM ANALYZE, so the planner and the visibility map see settled tables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

COLUMNS_SQL = """
SELECT c.oid::bigint, n.nspname, c.relname, a.attnum, a.attname, a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       format_type(a.atttypid, a.atttypmod), a.atttypid::bigint,
       coalesce(b.typname, t.typname), coalesce(b.typtype, t.typtype)::text,
       coalesce(b.typcategory, t.typcategory)::text,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, coalesce(b.oid, t.oid)::bigint
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
ORDER BY n.nspname, c.relname, a.attnum
"""
CHECKS_SQL = """
SELECT co.conrelid::bigint, co.contypid::bigint, co.conname, coalesce(co.conkey, '{}'), pg_get_constraintdef(co.oid)
FROM pg_constraint co
WHERE co.contype = 'c' AND (co.conrelid = ANY(%s::oid[]) OR co.contypid = ANY(%s::oid[]))
"""
FKS_SQL = """
SELECT co.conrelid::bigint, co.confrelid::bigint, co.conkey, co.confkey
FROM pg_constraint co WHERE co.contype = 'f' AND co.conrelid = ANY(%s::oid[]) ORDER BY co.conname
"""
ENUMS_SQL = "SELECT enumtypid::bigint, array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum GROUP BY 1"

_LABELS = re.compile(r"ARRAY\[(.*?)\]", re.S)
_LABEL = re.compile(r"'((?:[^']|'')*)'")
_INTS = {"int2": 32767, "int4": 2**31 - 1, "int8": 2**63 - 1}


@dataclass
class Column:
    attnum: int
    name: str
    not_null: bool
    defaulted: bool
    type: str        # format_type: the cast target (the server's own spelling, quoted as it needs)
    type_oid: int
    base: str        # the base type's name (a domain's base)
    typtype: str
    category: str
    typmod: int
    base_oid: int
    checks: list[str] = field(default_factory=list)   # definitions of CHECKs on this column alone (or its domain)


@dataclass
class Table:
    oid: int
    name: str        # schema.table
    ident: sql.Identifier
    columns: dict[int, Column] = field(default_factory=dict)
    fks: list[tuple[int, list[int], list[int]]] = field(default_factory=list)   # parent oid, columns, parent columns
    checks: dict[str, list[int]] = field(default_factory=dict)                # name -> columns (domain: its columns)


Candidate = tuple[sql.Composable, list]


def _bounds(defs: list[str], name: str) -> tuple[float | None, float | None]:
    lo = hi = None
    col = rf"(?<![\w\"$])(?:{re.escape(name)}|\"{re.escape(name)}\")\)*(?:::[\w ]+)?"
    for d in defs:
        for op, num in re.findall(col + r"\s*(>=|>|<=|<)\s*\(*(-?\d+(?:\.\d+)?)\)*", d):
            v = float(num)
            if op == ">=":
                lo = v if lo is None else max(lo, v)
            elif op == ">":
                lo = v + 1 if lo is None else max(lo, v + 1)
            elif op == "<=":
                hi = v if hi is None else min(hi, v)
            else:
                hi = v - 1 if hi is None else min(hi, v - 1)
    return lo, hi


def _labels(defs: list[str]) -> list[str]:
    for d in defs:
        m = _LABELS.search(d)
        if m and "ANY" in d:
            found = [x.replace("''", "'") for x in _LABEL.findall(m.group(1))]
            if found:
                return found
    return []


G = sql.SQL("gs.g")


def _expr(text: str, *params) -> Candidate:
    return sql.SQL(text).format(g=G), list(params)


def candidates(col: Column, enums: dict[int, list[str]]) -> list[Candidate]:
    """Values to try for a column, best first; each an SQL expression of gs.g (the row number) and its parameters."""
    out: list[Candidate] = []
    labels = enums.get(col.base_oid) or _labels(col.checks)
    lo, hi = _bounds(col.checks, col.name if col.typtype != "d" else "VALUE")
    if col.typtype == "d":
        lo2, hi2 = _bounds(col.checks, col.name)
        lo, hi = lo if lo is not None else lo2, hi if hi is not None else hi2
    base = col.base
    if labels:
        out.append(_expr("(%s::text[])[1 + ({g} - 1) %% %s]", labels, len(labels)))
    if base in _INTS:
        top = _INTS[base]
        if lo is not None and hi is not None:
            out.append(_expr("%s::bigint + ({g} - 1) %% %s", int(lo), max(int(hi - lo) + 1, 1)))
        elif lo is not None:
            out.append(_expr("%s::bigint + ({g} - 1) %% %s", int(lo), max(top - int(lo), 1)))
        elif hi is not None:
            out.append(_expr("%s::bigint - ({g} - 1) %% %s", int(hi), 1_000_000))
        else:
            out.append(_expr("1 + ({g} - 1) %% %s", top))
        out.append(_expr("%s::bigint", int(lo if lo is not None else hi if hi is not None else 1)))
    elif base in ("numeric", "float4", "float8"):
        digits = None
        if base == "numeric" and col.typmod >= 4:
            precision, scale = ((col.typmod - 4) >> 16) & 0xFFFF, (col.typmod - 4) & 0xFFFF
            digits = precision - scale
        if lo is not None and hi is not None:
            out.append(_expr("%s::numeric + (%s::numeric - %s) * ({g} %% 101) / 100", lo, hi, lo))
        elif lo is not None:
            span = 10 ** digits - 1 - lo if digits is not None else 1_000_000
            out.append(_expr("%s::numeric + ({g} - 1) %% %s", lo, max(int(span), 1)))
        elif digits is not None:
            out.append(_expr("({g} - 1) %% %s", max(10 ** digits - 1, 1)) if digits > 0 else _expr("0"))
        else:
            out.append(_expr("{g}"))
        out.append(_expr("%s::numeric", lo if lo is not None else hi if hi is not None else 0))
    elif col.category == "S":  # text, varchar(n), char(n), name, citext
        length = col.typmod - 4 if col.typmod > 4 and base in ("varchar", "bpchar") else 64
        out.append(_expr("left(md5({g}::text) || md5({g}::text), %s)", length))
        out.append(_expr("left('x' || {g}, %s)", length))
    elif base == "bool":
        out += [_expr("{g} %% 2 = 0"), _expr("true"), _expr("false")]
    elif base == "date":
        out += [_expr("date '2000-01-03' + ({g} - 1)::int"), _expr("date '2000-01-03' + 7 * ({g} - 1)::int"),
                _expr("(date '2000-01-01' + ({g} - 1) * interval '1 month')::date")]
    elif base in ("timestamp", "timestamptz"):
        out += [_expr("timestamptz '2020-01-01 00:00:00+00' + ({g} - 1) * interval '1 minute'"), _expr("now()")]
    elif base in ("time", "timetz"):
        out.append(_expr("time '00:00' + (({g} - 1) %% 86400) * interval '1 second'"))
    elif base == "interval":
        out.append(_expr("({g} - 1) * interval '1 second'"))
    elif base == "uuid":
        out.append(_expr("md5({g}::text)::uuid"))
    elif base in ("json", "jsonb"):
        out += [_expr("'{{}}'"), _expr("'[]'"), _expr("json_build_object('n', {g})::text")]
    elif base == "bytea":
        out.append(_expr("decode(md5({g}::text), 'hex')"))
    elif base in ("inet", "cidr"):
        out.append(_expr("'10.0.0.0'::inet + {g}"))
    elif col.category == "A":
        out.append(_expr("'{{}}'"))
    if not col.not_null or not out:
        out.append((sql.SQL("NULL"), []))
    return out


def read_tables(conn: psycopg.Connection, schemas: list[str]) -> dict[int, Table]:
    tables: dict[int, Table] = {}
    for (oid, schema, name, attnum, attname, not_null, defaulted, typ, type_oid, base, typtype, category, typmod,
         base_oid) in conn.execute(COLUMNS_SQL, (schemas,)).fetchall():
        t = tables.setdefault(oid, Table(oid, f"{schema}.{name}", sql.Identifier(schema, name)))
        t.columns[attnum] = Column(attnum, attname, not_null, defaulted, typ, type_oid, base, typtype, category,
                                   typmod, base_oid)
    domains = list({c.type_oid for t in tables.values() for c in t.columns.values() if c.typtype == "d"})
    for rel, typ, name, keys, definition in conn.execute(CHECKS_SQL, (list(tables), domains)).fetchall():
        if rel:
            t = tables[rel]
            t.checks[name] = list(keys)
            if len(keys) == 1 and keys[0] in t.columns:
                t.columns[keys[0]].checks.append(definition)
            continue
        for t in tables.values():  # a domain's CHECK: on every column of that domain
            cols = [c.attnum for c in t.columns.values() if c.type_oid == typ]
            if cols:
                t.checks[name] = t.checks.get(name, []) + cols
                for a in cols:
                    t.columns[a].checks.append(definition)
    for rel, parent, keys, parent_keys in conn.execute(FKS_SQL, (list(tables),)).fetchall():
        tables[rel].fks.append((parent, list(keys), list(parent_keys)))
    return tables


def parents_first(tables: dict[int, Table]) -> list[Table]:
    """Tables in an order where every parent (but itself) comes before its children; cycles at the end."""
    left = dict(tables)
    out: list[Table] = []
    while left:
        ready = [t for t in left.values() if all(p == t.oid or p not in left for p, _c, _p in t.fks)]
        if not ready:  # a cycle: the rest in name order (their references to later tables stay NULL)
            ready = sorted(left.values(), key=lambda t: t.name)[:1]
        for t in sorted(ready, key=lambda t: t.name):
            out.append(t)
            del left[t.oid]
    return out


def _insert(t: Table, n: int, choice: dict[int, int], options: dict[int, list[Candidate]],
            parents: list[tuple[Table, list[int], list[int], int]]) -> tuple[sql.Composed, list]:
    cols: list[sql.Composable] = []
    exprs: list[sql.Composable] = []
    params: list = []
    joins: list[sql.Composable] = []
    join_params: list = []
    taken: set[int] = set()
    for i, (parent, keys, parent_keys, count) in enumerate(parents):
        alias = sql.Identifier(f"p{i}")
        pcols = [parent.columns[k].name for k in parent_keys]
        joins.append(sql.SQL(" JOIN (SELECT {cols}, row_number() OVER () AS rn FROM {parent} WHERE {nn}) AS {a} "
                             "ON {a}.rn = (gs.g - 1) %% %s + 1").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, pcols)), parent=parent.ident, a=alias,
            nn=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in pcols)))
        join_params.append(count)
        for k, pc in zip(keys, pcols):
            if k not in taken:
                taken.add(k)
                cols.append(sql.Identifier(t.columns[k].name))
                exprs.append(sql.SQL("{}.{}").format(alias, sql.Identifier(pc)))
    for attnum, col in t.columns.items():
        if attnum in taken or col.defaulted or attnum not in options:
            continue
        expr, ps = options[attnum][choice[attnum]]
        cols.append(sql.Identifier(col.name))
        exprs.append(sql.SQL("({})::{}").format(expr, sql.SQL(col.type)))  # format_type: the server's spelling
        params += ps
    query = sql.SQL("INSERT INTO {t} ({cols}) SELECT {exprs} FROM generate_series(1, %s) AS gs(g){joins} "
                    "ON CONFLICT DO NOTHING").format(
        t=t.ident, cols=sql.SQL(", ").join(cols), exprs=sql.SQL(", ").join(exprs), joins=sql.Composed(joins))
    if not cols:
        query = sql.SQL("INSERT INTO {t} SELECT FROM generate_series(1, %s) AS gs(g) ON CONFLICT DO NOTHING").format(
            t=t.ident)
        return query, [n]
    return query, params + [n] + join_params


def fill_table(conn: psycopg.Connection, t: Table, n: int, counts: dict[int, int], enums: dict[int, list[str]],
               tables: dict[int, Table]) -> tuple[int, str | None]:
    """Insert up to n rows into t; (rows inserted, why not when none could be)."""
    parents: list[tuple[Table, list[int], list[int], int]] = []
    nulled: set[int] = set()
    for parent_oid, keys, parent_keys in t.fks:
        count = counts.get(parent_oid, 0)
        if parent_oid == t.oid or count == 0:
            nulled.update(keys)
            continue
        parents.append((tables[parent_oid], keys, parent_keys, count))
    for k in nulled:
        col = t.columns[k]
        if col.not_null and not col.defaulted and not any(k in keys for _p, keys, _pk, _c in parents):
            why = "it references itself" if any(p == t.oid for p, ks, _ in t.fks if k in ks) else \
                "its parent table has no rows"
            return 0, f"column {col.name} is a NOT NULL foreign key and {why}"
    options = {a: candidates(c, enums) for a, c in t.columns.items() if not c.defaulted and a not in nulled}
    choice = {a: 0 for a in options}
    tried: list[str] = []
    for _attempt in range(sum(len(o) for o in options.values()) + 1):
        query, params = _insert(t, n, choice, options, parents)
        try:
            with conn.transaction():
                cur = conn.execute(query, params)
            return cur.rowcount, None
        except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
            name = exc.diag.constraint_name or ""
            cols = t.checks.get(name, []) if isinstance(exc, psycopg.errors.CheckViolation) else \
                [a for a, c in t.columns.items() if c.name == exc.diag.column_name]
            movable = [a for a in cols if a in choice and choice[a] + 1 < len(options[a])]
            tried.append(" ".join(str(exc).split())[:200])
            if not movable:
                return 0, tried[-1]
            for a in movable:
                choice[a] += 1
        except psycopg.Error as exc:
            return 0, " ".join(str(exc).split())[:200]
    return 0, tried[-1] if tried else "no candidate values left"


@dataclass
class Filled:
    rows: dict[str, int]
    notes: list[str]
    seconds: float


def fill(conn: psycopg.Connection, schemas: list[str], n: int, *, say: Callable[[str], None]) -> Filled:
    """Up to n generated rows in every table of `schemas` (conn: the copy; committed table by table)."""
    started = time.perf_counter()
    tables = read_tables(conn, schemas)
    enums = {oid: list(labels) for oid, labels in conn.execute(ENUMS_SQL).fetchall()}
    conn.commit()
    counts: dict[int, int] = {}
    rows: dict[str, int] = {}
    notes: list[str] = []
    for t in parents_first(tables):
        count, why = fill_table(conn, t, n, counts, enums, tables)
        conn.commit()
        counts[t.oid] = count
        rows[t.name] = count
        if why:
            notes.append(f"{t.name} left empty: {why}")
    conn.commit()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for t in tables.values():
            if rows.get(t.name):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(t.ident))
    finally:
        conn.autocommit = autocommit
    seconds = time.perf_counter() - started
    say(f"trace: filled {sum(1 for c in rows.values() if c)} of {len(rows)} table(s) with up to {n} row(s) each "
        f"({sum(rows.values())} rows) in {seconds:.2f}s")
    return Filled(rows, notes, seconds)
