"""One table, described from the committed catalog snapshot, and the statements every table needs.

Column lists, the primary key, unique keys and indexes all come from
dbtool/catalog/snapshots/<module>.json (what PostgreSQL made of sql/), never from a second
hand-typed list. Statements are composed once per table and shape (psycopg.sql, identifiers
quoted by psycopg) and cached; values are always bound parameters.

Repository functions never commit: the caller owns the transaction. Functions that write
several statements wrap them in `conn.transaction()` (a savepoint inside an open
transaction), so they are all-or-nothing either way.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import pq, sql
from psycopg.adapt import PyFormat, Transformer
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from ..catalog import model
from ..catalog.expected import load_snapshot, table_columns
from ..fetch import fetch_one
from .errors import InvalidValue, RepoError

R = TypeVar("R")

# Keyword names page() reserves for itself; a column of that name would be ambiguous.
_PAGE_WORDS = {"by", "after", "limit"}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC: the default `now` of every repository behaviour."""
    return dt.datetime.now(dt.timezone.utc)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def _dumps_in_binary(conn: psycopg.Connection, types: Sequence[str], row: Sequence[Any]) -> bool:
    """Whether psycopg can dump `row` in binary as `types` (the dumpers copy.set_types would choose)."""
    try:
        tx = Transformer(conn)
        tx.set_dumper_types([conn.adapters.types.get_oid(t) for t in types], pq.Format.BINARY)
        tx.dump_sequence(row, [PyFormat.BINARY] * len(types))
    except (TypeError, ValueError, OverflowError, psycopg.Error):
        return False
    return True


def _wrap_json(json_at: Sequence[int], row: Sequence[Any]) -> list[Any]:
    """Text COPY only: json(b) values wrapped for psycopg (binary COPY dumps them by the column's type)."""
    out = list(row)
    for i in json_at:
        if out[i] is not None:
            out[i] = Jsonb(out[i])
    return out


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a keyset listing; pass `next` as `after=` to get the following page."""

    rows: list[R]
    next: tuple | None


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    identity: bool
    has_default: bool

    @property
    def is_json(self) -> bool:
        return self.type in ("json", "jsonb")


class Table(Generic[R]):
    """A table of the expected catalog with its cached statements; rows come back as `row` instances."""

    def __init__(self, module: str, name: str, row: type[R], *, natural_key: str | None = None):
        self.module, self.name, self.row = module, name, row
        self.qualified = f"{module}.{name}"
        snap = load_snapshot(module)
        self.columns: tuple[str, ...] = tuple(table_columns(module, name))
        self.column: dict[str, Column] = {
            c.name: Column(c.name, c.type, c.nullable, c.identity is not None, c.default is not None)
            for c in snap.columns(module, name)}
        cons = {c.name: c for c in snap.constraints(module, name)}
        self.primary_key: tuple[str, ...] = next(c.columns for c in cons.values() if c.type == "primary key")
        self.unique_keys: dict[str, tuple[str, ...]] = {n: c.columns for n, c in sorted(cons.items())
                                                        if c.type == "unique"}
        self.foreign_keys: dict[str, model.Constraint] = {n: c for n, c in sorted(cons.items())
                                                          if c.type == "foreign key"}
        # Plain column indexes (from pg_index.indkey): what keyset paging can walk.
        self.indexes: dict[str, tuple[str, ...]] = {
            ix.name: tuple(c for c in ix.key_columns if c is not None)
            for ix in sorted(snap.indexes(module, name), key=lambda ix: ix.name)
            if ix.valid and not ix.partial and ix.key_columns and None not in ix.key_columns}
        self.natural_key: tuple[str, ...] | None = self._natural_key(natural_key)
        self._ident = sql.Identifier(module, name)
        self._cache: dict[tuple, sql.Composed] = {}
        self._types: dict[tuple, tuple[str, ...] | None] = {}
        self._row_factory = class_row(row)
        clash = _PAGE_WORDS & set(self.columns)
        if clash:
            raise RepoError(f"{self.qualified}: column(s) {', '.join(sorted(clash))} clash with page() keywords")

    def __repr__(self) -> str:
        return f"Table({self.qualified})"

    # -- shape -------------------------------------------------------------------------------------------
    def _natural_key(self, named: str | None) -> tuple[str, ...] | None:
        """The key an upsert conflicts on: a named unique constraint, else a primary key the caller supplies
        (no identity, no default), else the first unique key whose columns are all NOT NULL, else any."""
        if named:
            if named not in self.unique_keys:
                raise RepoError(f"{self.qualified}: no unique constraint {named}")
            return self.unique_keys[named]
        if not any(self.column[c].identity or self.column[c].has_default for c in self.primary_key):
            return self.primary_key
        keys = list(self.unique_keys.values())
        keys.sort(key=lambda cols: any(self.column[c].nullable for c in cols))
        return keys[0] if keys else None

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """Columns a bulk load fills by default: all but identity columns."""
        return tuple(c for c in self.columns if not self.column[c].identity)

    def keys(self) -> list[tuple[str, ...]]:
        """Column sets that identify one row: the primary key, then each unique key."""
        return [self.primary_key, *self.unique_keys.values()]

    # -- statements ----------------------------------------------------------------------------------------
    def _cols(self, cols: Iterable[str]) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, cols))

    def _all(self) -> sql.Composable:
        return self._cols(self.columns)

    @property
    def ident(self) -> sql.Identifier:
        """schema.table, quoted."""
        return self._ident

    @property
    def select(self) -> sql.Composed:
        """`SELECT <every column> FROM schema.table`, for hand-written queries returning this table's rows."""
        return self._stmt("select")

    @property
    def returning(self) -> sql.Composed:
        """`RETURNING <every column>`."""
        return self._stmt("returning")

    def _compose_select(self) -> sql.Composed:
        return sql.SQL("SELECT {} FROM {}").format(self._all(), self._ident)

    def _compose_returning(self) -> sql.Composed:
        return sql.SQL("RETURNING {}").format(self._all())

    def _cond(self, cols: Iterable[str]) -> sql.Composable:
        return sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols)

    def _stmt(self, kind: str, *shape) -> sql.Composed:
        key = (kind, *shape)
        stmt = self._cache.get(key)
        if stmt is None:
            stmt = self._cache[key] = getattr(self, f"_compose_{kind}")(*shape)
        return stmt

    def _compose_get(self, key: tuple[str, ...]) -> sql.Composed:
        return sql.SQL("SELECT {} FROM {} WHERE {}").format(self._all(), self._ident, self._cond(key))

    def _compose_insert(self, cols: tuple[str, ...]) -> sql.Composed:
        if not cols:
            return sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING {}").format(self._ident, self._all())
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            self._ident, self._cols(cols), sql.SQL(", ").join(sql.Placeholder() * len(cols)), self._all())

    def _compose_update(self, key: tuple[str, ...], cols: tuple[str, ...]) -> sql.Composed:
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols)
        return sql.SQL("UPDATE {} SET {} WHERE {} RETURNING {}").format(
            self._ident, sets, self._cond(key), self._all())

    def _compose_delete(self, key: tuple[str, ...]) -> sql.Composed:
        return sql.SQL("DELETE FROM {} WHERE {} RETURNING {}").format(self._ident, self._cond(key), self._all())

    def _compose_upsert(self, cols: tuple[str, ...]) -> sql.Composed:
        nk = self.conflict_key()
        rest = [c for c in cols if c not in nk] or [nk[0]]  # a no-op SET still returns the existing row
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in rest)
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {} RETURNING {}").format(
            self._ident, self._cols(cols), sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            self._cols(nk), sets, self._all())

    def _compose_page(self, equal: tuple[str, ...], order: tuple[str, ...], by: tuple[str, ...],
                      has_after: bool) -> sql.Composed:
        conds = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in equal]
        # Row comparison treats NULL as unknown: keyset pages list the rows whose sort columns are set.
        conds += [sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in by if self.column[c].nullable]
        if has_after:
            conds.append(sql.SQL("({}) > ({})").format(self._cols(order),
                                                       sql.SQL(", ").join(sql.Placeholder() * len(order))))
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
        return sql.SQL("SELECT {} FROM {}{} ORDER BY {} LIMIT %s").format(
            self._all(), self._ident, where, self._cols(order))

    def _compose_copy(self, cols: tuple[str, ...], binary: bool = False) -> sql.Composed:
        fmt = sql.SQL(" (FORMAT BINARY)") if binary else sql.SQL("")
        return sql.SQL("COPY {} ({}) FROM STDIN{}").format(self._ident, self._cols(cols), fmt)

    # -- values --------------------------------------------------------------------------------------------
    def _check_names(self, names: Iterable[str]) -> None:
        unknown = [n for n in names if n not in self.column]
        if unknown:
            raise InvalidValue(f"{self.qualified} has no column {', '.join(unknown)}")

    def _ordered(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """The given column names in table order (one cached statement per set of columns)."""
        self._check_names(values)
        return tuple(c for c in self.columns if c in values)

    def _adapt(self, col: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidValue(f"{self.qualified}.{col}: text cannot contain a NUL byte (0x00); nothing stored")
            return value
        if self.column[col].is_json and not isinstance(value, Jsonb):
            if _has_nul(value):
                raise InvalidValue(f"{self.qualified}.{col}: JSON cannot contain a NUL character; nothing stored")
            return Jsonb(value)
        return value

    def _params(self, cols: Sequence[str], values: Mapping[str, Any]) -> list[Any]:
        return [self._adapt(c, values[c]) for c in cols]

    def _key_of(self, values: Mapping[str, Any], *, keys: list[tuple[str, ...]] | None = None) -> tuple[str, ...]:
        given = set(values)
        for key in keys or self.keys():
            if set(key) <= given:
                return key
        wanted = " or ".join("(" + ", ".join(k) + ")" for k in keys or self.keys())
        raise InvalidValue(f"{self.qualified}: give the key {wanted}")

    def run(self, conn: psycopg.Connection, stmt: sql.SQL | sql.Composed,
            params: Sequence[Any] | Mapping[str, Any] = ()) -> psycopg.Cursor[R]:
        """Execute a statement whose result rows are rows of this table (typed by the row class).

        `params` binds %s placeholders (a sequence) or %(name)s placeholders (a mapping).
        """
        cur = conn.cursor(row_factory=self._row_factory)
        try:
            return cur.execute(stmt, params)
        except psycopg.DataError as exc:
            if "NUL" in str(exc):
                raise InvalidValue(f"{self.qualified}: text cannot contain a NUL byte (0x00); nothing stored") \
                    from None
            raise

    def one(self, cur: psycopg.Cursor[R]) -> R:
        """The row a statement that always returns one (INSERT/upsert ... RETURNING) returned.

        RepoError if there is none: a BEFORE trigger returning NULL makes PostgreSQL skip the row silently.
        """
        row = cur.fetchone()
        if row is None:
            raise RepoError(f"{self.qualified}: the statement returned no row ({cur.statusmessage or 'no status'};"
                            " a BEFORE trigger returning NULL skips the row)")
        return row

    def conflict_key(self) -> tuple[str, ...]:
        """The natural key upserts conflict on; RepoError if the table has none."""
        if not self.natural_key:
            raise RepoError(f"{self.qualified} has no natural key to upsert on")
        return self.natural_key

    # -- operations ----------------------------------------------------------------------------------------
    def get(self, conn: psycopg.Connection, **key: Any) -> R | None:
        """The row with this primary key or unique key, or None."""
        cols = self._key_of(key)
        if set(cols) != set(key):
            raise InvalidValue(f"{self.qualified}: get() takes exactly one key, got {', '.join(key)}")
        return self.run(conn, self._stmt("get", cols), self._params(cols, key)).fetchone()

    def insert(self, conn: psycopg.Connection, **values: Any) -> R:
        """Insert one row (omitted columns take their defaults) and return it."""
        cols = self._ordered(values)
        return self.one(self.run(conn, self._stmt("insert", cols), self._params(cols, values)))

    def update(self, conn: psycopg.Connection, **key_and_values: Any) -> R | None:
        """Set only the given columns of the row named by its primary key; the updated row, or None."""
        self._check_names(key_and_values)
        key = self._key_of(key_and_values, keys=[self.primary_key])
        cols = tuple(c for c in self.columns if c in key_and_values and c not in key)
        if not cols:
            return self.get(conn, **{c: key_and_values[c] for c in key})
        return self.run(conn, self._stmt("update", key, cols),
                         self._params(cols + key, key_and_values)).fetchone()

    def delete(self, conn: psycopg.Connection, **key: Any) -> R | None:
        """Delete the row with this primary key or unique key; the deleted row, or None."""
        cols = self._key_of(key)
        return self.run(conn, self._stmt("delete", cols), self._params(cols, key)).fetchone()

    def upsert(self, conn: psycopg.Connection, **values: Any) -> R:
        """Insert, or update the given columns of the row with the same natural key; the row."""
        natural_key = self.conflict_key()
        missing = [c for c in natural_key if values.get(c) is None]
        if missing:  # NULL never conflicts: every call would insert another row
            raise InvalidValue(f"{self.qualified}: upsert needs its natural key ({', '.join(natural_key)}), "
                               f"not null")
        cols = self._ordered(values)
        return self.one(self.run(conn, self._stmt("upsert", cols), self._params(cols, values)))

    def page(self, conn: psycopg.Connection, *, by: str | Sequence[str] = (), after: Sequence[Any] | None = None,
             limit: int = 100, **equal: Any) -> Page[R]:
        """Rows with the given column values, ordered by `by` then the primary key, after the cursor `after`.

        Keyset pagination (never OFFSET); refused unless an index leads with the equality columns
        followed by `by`, so every page is an index range scan.
        """
        by = (by,) if isinstance(by, str) else tuple(by)
        self._check_names([*by, *equal])
        if any(v is None for v in equal.values()):
            raise InvalidValue(f"{self.qualified}: page() filters on equality; None matches nothing")
        eq = tuple(sorted(equal))
        order = by + tuple(c for c in self.primary_key if c not in by and c not in equal)
        if not order:  # the filters pin the whole primary key: at most one row
            raise RepoError(f"{self.qualified}: page() filters on the whole primary key; use get()")
        if not self._supported(eq, by):
            raise RepoError(f"{self.qualified}: no index on ({', '.join(eq + by)}) to list by")
        if after is not None and len(after) != len(order):
            raise InvalidValue(f"{self.qualified}: after= needs {len(order)} values ({', '.join(order)})")
        params = [self._adapt(c, equal[c]) for c in eq] + list(after or ()) + [limit]
        rows = self.run(conn, self._stmt("page", eq, order, by, after is not None), params).fetchall()
        nxt = tuple(getattr(rows[-1], c) for c in order) if rows and len(rows) == limit else None
        return Page(rows, nxt)

    def iterate(self, conn: psycopg.Connection, *, by: str | Sequence[str] = (), page_size: int = 1000,
                **equal: Any) -> Iterator[R]:
        """Every row page() would list, fetched page by page (no silent cut at one page)."""
        after = None
        while True:
            chunk = self.page(conn, by=by, after=after, limit=page_size, **equal)
            yield from chunk.rows
            if chunk.next is None:
                return
            after = chunk.next

    def where_page(self, conn: psycopg.Connection, name: str, where: sql.Composable, params: Sequence[Any], *,
                   order: Sequence[str], after: Sequence[Any] | None = None, limit: int = 100) -> Page[R]:
        """Keyset page over a hand-written condition (`name` keys the statement cache; `where` is fixed SQL)."""
        order = tuple(order)
        key = ("where", name, order, after is not None)
        stmt = self._cache.get(key)
        if stmt is None:
            conds = [where]
            if after is not None:
                conds.append(sql.SQL("({}) > ({})").format(self._cols(order),
                                                           sql.SQL(", ").join(sql.Placeholder() * len(order))))
            stmt = self._cache[key] = sql.SQL("{} WHERE {} ORDER BY {} LIMIT %s").format(
                self.select, sql.SQL(" AND ").join(conds), self._cols(order))
        rows = self.run(conn, stmt, [*params, *(after or ()), limit]).fetchall()
        nxt = tuple(getattr(rows[-1], c) for c in order) if rows and len(rows) == limit else None
        return Page(rows, nxt)

    def _supported(self, equal: tuple[str, ...], by: tuple[str, ...]) -> bool:
        n = len(equal)
        for cols in [self.primary_key, *self.indexes.values()]:
            if set(cols[:n]) == set(equal) and cols[n:n + len(by)] == by and len(cols) >= n + len(by):
                return True
        return False

    def copy_types(self, cols: tuple[str, ...]) -> tuple[str, ...] | None:
        """The types binary COPY sends these columns as (for copy.set_types), or None when psycopg cannot
        dump one of them in binary (a domain, a composite type, an array of enums): then text COPY.

        Type modifiers are dropped (PostgreSQL applies the column's own on input: numeric(12,2) rounds,
        varchar(20) refuses longer text); an enum column goes as text, which the enum's binary input reads
        as its label. Computed once per set of columns.
        """
        key = ("copy types", cols)
        if key in self._types:
            return self._types[key]
        enums = load_snapshot(self.module).enums()
        names: list[str] | None = []
        for c in cols:
            name = re.sub(r"\(\d+(?:,\d+)?\)", "", self.column[c].type)
            if name in enums:
                name = "text"
            if names is not None and psycopg.adapters.types.get(name) is not None:
                names.append(name)
            else:
                names = None
        found = self._types[key] = tuple(names) if names is not None else None
        return found

    def binary_copy(self, conn: psycopg.Connection, first_row: Sequence[Any], *,
                    columns: Sequence[str] | None = None, binary: bool | None = None) -> bool:
        """Whether load() sends rows starting with `first_row` as binary COPY (see load)."""
        types = self.copy_types(tuple(columns) if columns is not None else self.insert_columns)
        if types is None or binary is False:
            return False
        return binary is True or _dumps_in_binary(conn, types, first_row)

    def load(self, conn: psycopg.Connection, rows: Iterable[Sequence[Any]], *,
             columns: Sequence[str] | None = None, binary: bool | None = None) -> int:
        """Bulk load with COPY: `rows` are sequences in `columns` order (default: all but identity columns).

        Returns the number of rows written. One COPY statement; a failure stores none of them.

        By default the fastest exact path: binary COPY with every column's type set beforehand
        (psycopg's copy.set_types), so PostgreSQL parses nothing and psycopg dumps each value by its
        column's type, in C, with no Python work per row. Binary values must be of the column's Python
        type: str for text, int for integers, Decimal or int for numeric, date for date, an aware
        datetime for timestamptz, anything JSON-serialisable for json(b), None for NULL. The first row
        decides: when one of its values does not fit (a str "10.00" for a numeric, a naive datetime
        for a timestamptz), the whole load goes as text COPY, where PostgreSQL parses every value as it
        would a literal. binary=True or False forces the format (True still falls back to text for a
        type psycopg cannot dump in binary, see copy_types). A later row that does not fit binary
        stops the load with InvalidValue (nothing stored).
        """
        cols = tuple(columns) if columns is not None else self.insert_columns
        self._check_names(cols)
        it = iter(rows)
        for first in it:
            break
        else:
            return 0  # no row: no statement
        types = self.copy_types(cols)
        use_binary = self.binary_copy(conn, first, columns=cols, binary=binary)
        counter = itertools.count()  # counts the rows taken from the input, in C (zip stops before it)
        stream = map(itemgetter(0), zip(itertools.chain((first,), it), counter))
        try:
            with conn.cursor() as cur, cur.copy(self._stmt("copy", cols, use_binary)) as copy:
                if use_binary:
                    assert types is not None
                    copy.set_types(types)
                    deque(map(copy.write_row, stream), maxlen=0)
                else:
                    json_at = [i for i, c in enumerate(cols) if self.column[c].is_json]
                    deque(map(copy.write_row, map(partial(_wrap_json, json_at), stream) if json_at else stream),
                          maxlen=0)
        except psycopg.DataError as exc:
            if "NUL" in str(exc) or "0x00" in str(exc) or "\\u0000" in str(exc):
                raise InvalidValue(f"{self.qualified}: text cannot contain a NUL byte (0x00); nothing stored") \
                    from None
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # a value binary COPY cannot dump as its column
            if not use_binary:
                raise
            raise InvalidValue(f"{self.qualified}: row {next(counter)} does not fit binary COPY ({exc}); each "
                               f"value must be of its column's Python type, as in the first row; nothing stored "
                               f"(binary=False has PostgreSQL parse text)") from None
        return next(counter)

    def count(self, conn: psycopg.Connection) -> int:
        return fetch_one(conn.execute(self._stmt("count")))[0]

    def _compose_count(self) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM {}").format(self._ident)
