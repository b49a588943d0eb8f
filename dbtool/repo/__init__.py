"""Thin repository functions over every table: dbtool.repo.<module>.<table>.

Each table module holds `T` (its dbtool.repo._table.Table, built from the catalog snapshot) and
the functions applications call: get, insert, update, delete, upsert (where a natural key exists),
page (keyset), load (COPY), plus that table's behaviours from the specifications.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..catalog.expected import load_snapshot
from ._table import Table


def table_names(module: str) -> list[str]:
    return sorted(t.name for t in load_snapshot(module).tables())


def tables(modules: list[str]) -> dict[str, Table[Any]]:
    """{"module.table": Table} of the given modules, in dependency order (parents before children)."""
    found: dict[str, Table[Any]] = {f"{m}.{t}": importlib.import_module(f"{__name__}.{m}.{t}").T
                                    for m in modules for t in table_names(m)}
    order: list[str] = []

    def visit(name: str, path: tuple = ()) -> None:
        if name in order or name in path or name not in found:
            return
        for fk in found[name].foreign_keys.values():
            if fk.references and fk.references != name:
                visit(fk.references, path + (name,))
        order.append(name)

    for name in sorted(found):
        visit(name)
    return {n: found[n] for n in order}
