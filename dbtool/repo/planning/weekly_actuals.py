"""planning.weekly_actuals: week-by-week actual sales uploaded for a workflow, compared with its forecast.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: upload a batch of actuals as one idempotent, set-based upsert on (workflow_id, week_number,
store_id) computing variance_pct; the variance report of a workflow per week.

The seed's key unique_workflow_week_store holds one row per workflow, week and store, whatever the category:
a batch that gives two rows for one key (e.g. two categories of one store and week) is refused whole
(CollidingRows, naming the rows), never reduced to one of them in silence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .._table import Page, Table
from ..errors import InvalidValue
from ..rows_generated import WeeklyActuals

T = Table("planning", "weekly_actuals", WeeklyActuals)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

# What an upload supplies: every column without identity or default, except the computed variance_pct.
COMPUTED = "variance_pct"
UPLOAD_COLUMNS = tuple(c for c in T.columns
                       if not T.column[c].identity and not T.column[c].has_default and c != COMPUTED)
NATURAL_KEY = T.conflict_key()  # (workflow_id, week_number, store_id); RepoError at import if there is none
KEY_NAME = next(name for name, cols in T.unique_keys.items() if cols == NATURAL_KEY)  # unique_workflow_week_store
_VARIANCE = sql.SQL("CASE WHEN u.forecast_units_sold IS NULL OR u.forecast_units_sold = 0 THEN NULL"
                    " ELSE (u.actual_units_sold - u.forecast_units_sold)::double precision / u.forecast_units_sold END")


def _compose_upload() -> sql.Composed:
    ident, cols = sql.Identifier, UPLOAD_COLUMNS
    arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(T.column[c].type)) for c in cols)
    changed = [c for c in cols if c not in NATURAL_KEY] + [COMPUTED]
    return sql.SQL(
        "INSERT INTO {t} AS t ({cols}, {v}) SELECT {ucols}, {variance} FROM unnest({arrays}) AS u ({cols})"
        " ON CONFLICT ({key}) DO UPDATE SET {sets}, uploaded_at = now()"
        " WHERE ({old}) IS DISTINCT FROM ({new})"  # unchanged rows are left alone: re-uploading is a no-op
        " RETURNING (xmax = 0) AS inserted"
    ).format(
        t=T.ident, cols=sql.SQL(", ").join(map(ident, cols)), v=ident(COMPUTED),
        ucols=sql.SQL(", ").join(sql.SQL("u.{}").format(ident(c)) for c in cols), variance=_VARIANCE, arrays=arrays,
        key=sql.SQL(", ").join(map(ident, NATURAL_KEY)),
        sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in changed),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in changed),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in changed))


_UPLOAD = _compose_upload()


@dataclass(frozen=True)
class UploadResult:
    """What an upload did with each row of the batch: inserted + updated + unchanged == rows given."""

    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class Collision:
    """Rows of one batch with the same key: their positions in the batch, counting from 1."""

    key: tuple  # (workflow_id, week_number, store_id)
    rows: tuple[int, ...]
    categories: tuple[str, ...]  # category_id of each of those rows


class CollidingRows(InvalidValue):
    """An upload batch gives more than one row for one (workflow_id, week_number, store_id); nothing written.

    `collisions` lists every key given more than once, with the rows that gave it.
    """

    def __init__(self, workflow_id: str, collisions: list[Collision]):
        self.collisions = collisions
        shown = "; ".join(
            f"rows {', '.join(map(str, c.rows))} (category_id {', '.join(c.categories)}) have the same "
            + ", ".join(f"{col}={v}" for col, v in zip(NATURAL_KEY, c.key) if col != "workflow_id")
            for c in collisions[:5])
        more = f"; and {len(collisions) - 5} more key(s)" if len(collisions) > 5 else ""
        super().__init__(
            f"planning.weekly_actuals upload for workflow {workflow_id}: {shown}{more} (rows counted from 1); "
            f"{KEY_NAME} holds one row per workflow, week and store: give each once. "
            f"Nothing written")


def upload(conn: psycopg.Connection, *, workflow_id: str, rows: Iterable[Mapping[str, Any]]) -> UploadResult:
    """Upsert a batch of one workflow's weekly actuals in one statement.

    Each mapping gives UPLOAD_COLUMNS except workflow_id (forecast_units_sold may be missing or None).
    Each (week_number, store_id) may appear once: a batch repeating one, even with the same values or another
    category, is refused whole (CollidingRows, naming every colliding row; nothing written). Keeping one of
    them would drop the other's sales in silence, and which one survived would depend on the batch's order.
    Uploading the same batch again changes nothing.
    """
    batch: dict[tuple, dict] = {}
    seen: dict[tuple, list[tuple[int, Any]]] = {}  # key -> (position, category_id) of each row giving it
    for position, r in enumerate(rows, 1):
        r = {"forecast_units_sold": None, **r, "workflow_id": workflow_id}
        missing = [c for c in UPLOAD_COLUMNS if c not in r]
        extra = [c for c in r if c not in UPLOAD_COLUMNS]
        if missing or extra:
            raise InvalidValue(f"planning.weekly_actuals upload: missing {missing or '-'}, unknown {extra or '-'}")
        key = tuple(r[c] for c in NATURAL_KEY)
        seen.setdefault(key, []).append((position, r["category_id"]))
        batch.setdefault(key, r)
    if len(batch) != sum(map(len, seen.values())):
        raise CollidingRows(workflow_id, [Collision(k, tuple(p for p, _ in given), tuple(str(c) for _, c in given))
                             for k, given in seen.items() if len(given) > 1])
    if not batch:
        return UploadResult(0, 0, 0)
    arrays = [[T._adapt(c, r[c]) for r in batch.values()] for c in UPLOAD_COLUMNS]
    flags = [row[0] for row in conn.execute(_UPLOAD, arrays).fetchall()]
    inserted = sum(flags)
    return UploadResult(inserted, len(flags) - inserted, len(batch) - len(flags))


@dataclass(frozen=True)
class WeekVariance:
    week_number: int
    week_start_date: dt.date
    stores: int
    actual_units: int
    forecast_units: int | None
    variance_pct: float | None  # over the stores that have a non-zero forecast


_REPORT = sql.SQL(
    "SELECT week_number, min(week_start_date), count(*), sum(actual_units_sold),"
    " sum(forecast_units_sold),"
    " (sum(actual_units_sold) FILTER (WHERE forecast_units_sold > 0) - sum(forecast_units_sold)"
    "   FILTER (WHERE forecast_units_sold > 0))::double precision"
    "   / NULLIF(sum(forecast_units_sold) FILTER (WHERE forecast_units_sold > 0), 0)"
    " FROM {} WHERE workflow_id = %s AND (%s::integer IS NULL OR week_number = %s::integer)"
    " GROUP BY week_number ORDER BY week_number").format(T.ident)


def variance_report(conn: psycopg.Connection, *, workflow_id: str, week_number: int | None = None
                    ) -> list[WeekVariance]:
    """Per week of a workflow (or one week): stores reporting, units actual vs forecast, overall variance."""
    rows = conn.execute(_REPORT, (workflow_id, week_number, week_number)).fetchall()
    return [WeekVariance(w, d, n, int(a), None if f is None else int(f), v) for w, d, n, a, f, v in rows]


def of_week(conn: psycopg.Connection, *, workflow_id: str, week_number: int, after: tuple | None = None,
            limit: int = 500) -> Page[WeeklyActuals]:
    """The per-store rows of one week of a workflow."""
    return T.page(conn, workflow_id=workflow_id, week_number=week_number, after=after, limit=limit)
