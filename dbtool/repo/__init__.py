"""Thin repository functions over every table: dbtool.repo.<module>.<table>.

Each table module holds `T` (its dbtool.repo._table.Table, built from the catalog snapshot) and
the functions applications call: get, insert, update, delete, upsert (where a natural key exists),
page (keyset), load (COPY), plus that table's behaviours from the specifications.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from ..catalog.expected import load_snapshot
from ._table import Table


def table_names(module: str) -> list[str]:
    return sorted(t.name for t in load_snapshot(module).tables())


def tables(modules: list[str]) -> dict[str, Table[Any]]:
    """{"module.table": Table} of the given modules, in dependency order (parents before children)."""
    found: dict[str, Table[Any]] = {f"{m}.{t}": importlib.import_module(f"{__name__}.{m}.{t}").T
                                    for m in modules for t in table_names(m)}
    return parents_first(found)


V = TypeVar("V")


def parents_first(found: dict[str, V]) -> dict[str, V]:
    """The same mapping ordered so that a table comes after the tables its foreign keys reference
    (values that are not Tables have no foreign keys; cycles and self-references are cut)."""
    order: list[str] = []

    def visit(name: str, path: tuple = ()) -> None:
        t = found.get(name)
        if name in order or name in path or t is None:
            return
        if isinstance(t, Table):
            for fk in t.foreign_keys.values():
                if fk.references and fk.references != name:
                    visit(fk.references, path + (name,))
        order.append(name)

    for name in sorted(found):
        visit(name)
    return {n: found[n] for n in order}
