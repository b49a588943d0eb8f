"""Status life cycles: a change of status happens only from an allowed state, in one atomic statement.

`UPDATE ... SET status = %s WHERE <key> AND status = ANY(<allowed from>) RETURNING ...`: two
concurrent callers cannot both move the same row, and a refused change writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from ._table import Table
from .errors import IllegalTransition, NotFound

R = TypeVar("R")


class Lifecycle:
    """Allowed moves of a status column: {target state: states it may be reached from}."""

    def __init__(self, table: Table, moves: Mapping[str, Sequence[str]], *, column: str = "status"):
        table._check_names([column])
        self.table, self.column, self.moves = table, column, {k: tuple(v) for k, v in moves.items()}
        self._cache: dict[tuple, sql.Composed] = {}

    def allowed_from(self, to: str) -> tuple[str, ...]:
        return self.moves.get(to, ())

    def move(self, conn: psycopg.Connection, *, to: str, key: Mapping[str, Any],
             also: Mapping[str, Any] | None = None) -> Any:
        """Move the row named by `key` to `to` (setting `also` columns too); the updated row.

        Raises IllegalTransition (nothing changed) when the row is not in a state `to` can be reached from,
        NotFound when there is no such row.
        """
        t, also = self.table, dict(also or {})
        if to not in self.moves:
            raise IllegalTransition(f"{t.qualified}: no transition to {to} (targets: {', '.join(self.moves)})")
        t._check_names([*key, *also])
        key_cols, also_cols = tuple(key), tuple(also)
        stmt = self._cache.get((key_cols, also_cols))
        if stmt is None:
            sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in (self.column, *also_cols))
            stmt = self._cache[(key_cols, also_cols)] = sql.SQL(
                "UPDATE {} SET {} WHERE {} AND {} = ANY(%s) {}").format(
                t.ident, sets, t._cond(key_cols), sql.Identifier(self.column), t.returning)
        params = [to, *(t._adapt(c, v) for c, v in also.items()), *key.values(), list(self.moves[to])]
        row = t.run(conn, stmt, params).fetchone()
        if row is not None:
            return row
        current = t.get(conn, **key)
        what = ", ".join(f"{k}={v}" for k, v in key.items())
        if current is None:
            raise NotFound(f"{t.qualified}: no row with {what}")
        state = getattr(current, self.column)
        raise IllegalTransition(f"{t.qualified} {what}: {state} -> {to} is not allowed "
                                f"(only from {' or '.join(self.moves[to])}); nothing changed")
