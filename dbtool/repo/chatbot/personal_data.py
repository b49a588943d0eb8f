"""Which columns hold personal data, and which rows go with a row: derived from the committed catalog.

A column holds personal data when its comment ends with the tag `[personal data]`
(sql/<module>/NNN_personal_data.sql). User erasure (users.erase) and the retention purge
(dbtool.jobs.purge) take the tables they delete from from those tags and the foreign keys of the
committed snapshot (dbtool.catalog.expected.load_snapshot), never from a hand-written list:

- a plan starts at a root table (chatbot.users for erasure, chatbot.sessions for retention) and takes
  every table whose rows depend on a root row through foreign keys ON DELETE CASCADE, transitively; each
  table's rows are deleted explicitly, children first, so every table is counted (nothing hides in a
  cascade);
- rows that reference a planned row ON DELETE SET NULL (or SET DEFAULT) outlive it, detached: they are
  `detached` in the plan and counted, never deleted (chatbot.qualified_leads.session_id: a lead outlives
  its 24-hour session by design);
- a foreign key ON DELETE NO ACTION or RESTRICT into a planned table would make the delete fail: the plan
  is refused, naming it (say in sql/ whether those rows go with their parent or outlive it);
- every table holding a tagged column must be in the plan. Outside it a tagged table is allowed only for
  retention (strict=False), and only as a parent of the root (the person: chatbot.users is erased on
  request, not by age) or as a detached table; one that no foreign key connects is refused: personal data
  the code cannot reach would be kept forever.

Self-referencing foreign keys are left to PostgreSQL's own cascade (those rows are not counted separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import psycopg
from psycopg import sql

from ...catalog.expected import load_snapshot
from ...catalog.model import Catalog, Constraint
from ...errors import DbtoolError
from ...fetch import fetch_one

TAG = "[personal data]"
DELETES = ("CASCADE",)
DETACHES = ("SET NULL", "SET DEFAULT")
BLOCKS = ("NO ACTION", "RESTRICT")


class PlanError(DbtoolError):
    """The catalog does not let the code reach (or delete) every row of personal data."""


def is_personal(comment: str | None) -> bool:
    return comment is not None and comment.rstrip().endswith(TAG)


def without_tag(comment: str | None) -> str | None:
    """The comment as a reader wants it: without the trailing tag (None when nothing else is left)."""
    if comment is None or not is_personal(comment):
        return comment
    rest = comment.rstrip()[: -len(TAG)].rstrip()
    return rest or None


def personal_columns(catalog: Catalog, schema: str) -> dict[str, tuple[str, ...]]:
    """{"schema.table": (tagged columns, in table order)} for the tables of `schema` holding personal data."""
    out: dict[str, tuple[str, ...]] = {}
    for t in sorted(catalog.tables(), key=lambda t: t.key):
        if t.schema == schema:
            cols = tuple(c.name for c in catalog.columns(t.schema, t.name) if is_personal(c.comment))
            if cols:
                out[t.key] = cols
    return out


@dataclass(frozen=True)
class Link:
    """A foreign key of `child` (its columns) referencing `parent` (ref_columns)."""

    name: str
    child: str
    columns: tuple[str, ...]
    parent: str
    ref_columns: tuple[str, ...]
    on_delete: str

    @classmethod
    def of(cls, fk: Constraint) -> "Link":
        return cls(fk.name, fk.parent or "", tuple(fk.columns), fk.references or "", tuple(fk.ref_columns),
                   fk.on_delete or "NO ACTION")


def _ident(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split(".", 1))


def _cols(names: Sequence[str]) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, names)))


@dataclass(frozen=True)
class Plan:
    """The tables whose rows go with a set of root rows (named by the root's key), children first."""

    root: str
    key: str                               # the root's single-column primary key
    tables: tuple[str, ...]                # children first, the root last
    links: dict[str, tuple[Link, ...]]     # per planned table but the root: its CASCADE links to planned parents
    detached_links: tuple[Link, ...]       # SET NULL / SET DEFAULT links from unplanned tables into planned ones
    kept: dict[str, str] = field(default_factory=dict)  # tagged tables outside the plan: why they stay

    @property
    def detached(self) -> tuple[str, ...]:
        return tuple(sorted({link.child for link in self.detached_links}))

    def rows_of(self, table: str) -> sql.Composable:
        """A condition selecting the rows of `table` that go with the root rows whose key = ANY(%(keys)s)."""
        if table == self.root:
            return sql.SQL("{} = ANY(%(keys)s)").format(sql.Identifier(self.key))
        return sql.SQL(" OR ").join(self._via(link) for link in self.links[table])

    def _via(self, link: Link) -> sql.Composable:
        return sql.SQL("{} IN (SELECT {} FROM {} WHERE {})").format(
            _cols(link.columns), sql.SQL(", ").join(map(sql.Identifier, link.ref_columns)), _ident(link.parent),
            self.rows_of(link.parent))

    def count(self, conn: psycopg.Connection, keys: Sequence[object]) -> dict[str, int]:
        """{table: rows that would go}, changing nothing."""
        return {t: int(fetch_one(conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                    _ident(t), self.rows_of(t)), {"keys": list(keys)}))[0]) for t in self.tables}

    def count_detached(self, conn: psycopg.Connection, keys: Sequence[object]) -> dict[str, int]:
        """{table: rows that stay but lose their reference}."""
        out: dict[str, int] = {}
        for link in self.detached_links:
            n = fetch_one(conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                _ident(link.child), self._via(link)), {"keys": list(keys)}))[0]
            out[link.child] = out.get(link.child, 0) + int(n)
        return out

    def delete(self, conn: psycopg.Connection, keys: Sequence[object]) -> dict[str, int]:
        """Delete the rows, children first; {table: rows deleted}. The caller owns the transaction."""
        return {t: conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(_ident(t), self.rows_of(t)),
                                {"keys": list(keys)}).rowcount
                for t in self.tables}


def plan(catalog: Catalog, root: str, *, strict: bool = False) -> Plan:
    """The plan of `root` in `catalog` (see the module docstring); strict: every tagged table is in it."""
    schema = root.split(".", 1)[0]
    tables = {t.key for t in catalog.tables()}
    if root not in tables:
        raise PlanError(f"no table {root} in the expected catalog")
    links = [Link.of(c) for t in catalog.tables() for c in catalog.constraints(t.schema, t.name)
             if c.type == "foreign key" and c.references in tables]
    pkey = [c for c in catalog.constraints(*root.split(".", 1)) if c.type == "primary key"]
    if len(pkey) != 1 or len(pkey[0].columns) != 1:
        raise PlanError(f"{root} needs a single-column primary key to be the root of an erasure or purge")

    # Breadth first from the root along CASCADE links. A table's rows are those referencing rows of a table
    # planned before it (so the conditions nest without cycles); a link from a table planned after it is left
    # to PostgreSQL's cascade.
    order, frontier = [root], [root]
    while frontier:
        frontier = sorted({lk.child for lk in links if lk.parent in frontier and lk.on_delete in DELETES
                           and lk.child not in order})
        order += frontier
    planned = set(order)
    links_of = {t: tuple(lk for lk in links if lk.child == t and lk.on_delete in DELETES and lk.parent in planned
                         and order.index(lk.parent) < order.index(t)) for t in order[1:]}

    for link in links:
        if link.parent in planned and link.child != link.parent and link.on_delete in BLOCKS:
            raise PlanError(f"{link.child} references {link.parent} ON DELETE {link.on_delete} "
                            f"({link.name}): deleting {link.parent} rows would fail; say in sql/ whether its rows "
                            "go with their parent (CASCADE) or outlive it (SET NULL)")
    detached = tuple(sorted((lk for lk in links if lk.parent in planned and lk.child not in planned
                             and lk.on_delete in DETACHES), key=lambda lk: (lk.child, lk.name)))

    parents = _ancestors(root, links)
    kept: dict[str, str] = {}
    for table in personal_columns(catalog, schema):
        if table in planned:
            continue
        detaching = [lk for lk in detached if lk.child == table]
        if detaching and not strict:
            kept[table] = (f"outlives {detaching[0].parent} rows ({detaching[0].name} ON DELETE "
                           f"{detaching[0].on_delete}); its rows lose the reference")
        elif table in parents and not strict:
            kept[table] = f"a parent of {root}: its rows are not deleted with {root} rows"
        elif detaching or table in parents:
            raise PlanError(f"{table} holds personal data but its rows do not go with {root} rows "
                            f"(no ON DELETE CASCADE foreign key path): the erasure would keep them")
        else:
            raise PlanError(f"{table} holds personal data but no foreign key connects it to {root}: "
                            "its rows would be kept forever; add one in sql/")

    return Plan(root, pkey[0].columns[0], tuple(_children_first(order, links)), links_of, detached, kept)


def _ancestors(root: str, links: list[Link]) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        t = todo.pop()
        for lk in links:
            if lk.child == t and lk.parent not in seen and lk.parent != root:
                seen.add(lk.parent)
                todo.append(lk.parent)
    return seen


def _children_first(order: list[str], links: list[Link]) -> list[str]:
    """The planned tables, each after every planned table that references it (any foreign key)."""
    planned = set(order)
    out: list[str] = []

    def visit(t: str, path: tuple[str, ...]) -> None:
        if t in out or t in path:
            return
        for child in sorted({lk.child for lk in links if lk.parent == t and lk.child in planned}):
            visit(child, path + (t,))
        out.append(t)

    for t in reversed(order):
        visit(t, ())
    return out


@lru_cache(maxsize=None)
def erasure_plan() -> Plan:
    """Every row of a chatbot user: the tables from chatbot.users down, every tagged table included."""
    return plan(load_snapshot("chatbot"), "chatbot.users", strict=True)


@lru_cache(maxsize=None)
def retention_plan() -> Plan:
    """What goes with a chatbot session when the retention purge takes it."""
    return plan(load_snapshot("chatbot"), "chatbot.sessions")
