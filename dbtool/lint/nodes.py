"""Reading parse trees: names, constants, types and the few expressions the rules look into."""

from __future__ import annotations

from typing import Iterator

from . import parse as p
from .parse import Node, inner, kind, strings


def object_names(n: Node) -> list[list[str]]:
    out = []
    for o in n.objects:
        v = inner(o)
        out.append(strings(v.items) if kind(v) == "List" else [v.sval] if kind(v) == "String" else [])
    return [x for x in out if x]


def constraints_of_create(n: Node) -> Iterator[Node]:
    for elt in (inner(e) for e in n.table_elts):
        if kind(elt) == "ColumnDef":
            yield from (inner(c) for c in elt.constraints)
        elif kind(elt) == "Constraint":
            yield elt


def const_text(node: Node) -> str:
    c = inner(node)
    if kind(c) == "A_Const":
        which = c.WhichOneof("val")
        if which == "sval":
            return str(c.sval.sval)
        if which == "ival":
            return str(c.ival.ival)
        if which == "fval":
            return str(c.fval.fval)
        if which == "boolval":
            return "true" if c.boolval.boolval else "false"
        return "0" if which is None and not c.isnull else ""
    if kind(c) == "TypeCast":
        return const_text(c.arg)
    return ""


def modifiers(t: Node) -> list[int]:
    return [int(const_text(m) or 0) for m in t.typmods]


# How SQL spells the built-in types the grammar names by their internal names (for messages only).
SQL_NAMES = {"int8": "bigint", "int4": "integer", "int2": "smallint", "float8": "double precision", "float4": "real",
             "bool": "boolean", "bpchar": "char", "timestamptz": "timestamptz", "varbit": "bit varying"}


def type_text(t: Node, *, typmods: bool = True, display: bool = True) -> str:
    names = [x for x in strings(t.names) if x != "pg_catalog"] or strings(t.names)
    if len(names) == 1 and display:
        names = [SQL_NAMES.get(names[0], names[0])]
    text = ".".join(f'"{x}"' if not x.replace("_", "").isalnum() and " " not in x else x for x in names)
    mods = modifiers(t)
    if typmods and mods:
        text += f"({', '.join(str(m) for m in mods)})"
    return text + "[]" * len(t.array_bounds)


def type_of(text: str) -> Node:
    """The TypeName of a type as format_type prints it (`character varying(100)`), by the grammar."""
    stmt = p.parse_one(f"SELECT NULL::{text}")[0]
    return inner(inner(stmt.target_list[0]).val).type_name


def typmod_rewrite(name: str, old: list[int], new: list[int], shown: str) -> str | None:
    """Same base type, other modifiers: PostgreSQL skips the rewrite when the new ones only widen."""
    if old == new or not new:
        return None if name not in ("bpchar", "bit") or old == new else f"{shown} padded to another length"
    if name in ("varchar", "varbit"):
        return None if old and new[0] >= old[0] else f"{shown} to a shorter length: every value is checked"
    if name == "numeric":
        if old and len(new) == len(old) and new[-1] == old[-1] and new[0] >= old[0]:
            return None
        return f"{shown} to another precision or scale: every value is converted"
    if name in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        return None if old and new[-1] >= old[-1] else f"{shown} to a lower precision: every value is rounded"
    return f"{shown} with other type modifiers"


def plain_using(expr: Node, column: str) -> bool:
    """USING col, or USING col::newtype: PostgreSQL's own conversion, judged like no USING at all."""
    e = inner(expr)
    if kind(e) == "TypeCast":
        e = inner(e.arg)
    return kind(e) == "ColumnRef" and strings(e.fields)[-1:] == [column]


def not_null_columns(definition: str) -> set[str]:
    """Columns a CHECK definition (as pg_get_constraintdef prints it) proves NOT NULL."""
    if not definition.upper().startswith("CHECK"):
        return set()
    stmt = p.parse_one(f"ALTER TABLE x ADD {definition}")[0]
    if stmt is None:
        return set()
    con = inner(getattr(inner(stmt.cmds[0]), "def"))
    return not_null_columns_expr(con.raw_expr) if con is not None and p.has(con, "raw_expr") else set()


def not_null_columns_expr(expr: Node) -> set[str]:
    """Columns `col IS NOT NULL` proves, in the expression or in any of its top-level AND terms."""
    e = inner(expr)
    pb = p.pb()
    if kind(e) == "BoolExpr" and e.boolop == pb.AND_EXPR:
        return set().union(*(not_null_columns_expr(a) for a in e.args))
    if kind(e) == "NullTest" and e.nulltesttype == pb.IS_NOT_NULL and kind(inner(e.arg)) == "ColumnRef":
        return {strings(inner(e.arg).fields)[-1]}
    return set()
