"""planning.weekly_actuals: week-by-week actual sales uploaded for a workflow, compared with its forecast.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: upload a batch of actuals as one idempotent, set-based upsert on (workflow_id, week_number,
store_id) computing variance_pct; the variance report of a workflow per week.
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
    inserted: int
    updated: int
    unchanged: int


def upload(conn: psycopg.Connection, *, workflow_id: str, rows: Iterable[Mapping[str, Any]]) -> UploadResult:
    """Upsert a batch of one workflow's weekly actuals in one statement.

    Each mapping gives UPLOAD_COLUMNS except workflow_id (forecast_units_sold may be missing or None).
    A key repeated within the batch keeps its last row. Uploading the same batch again changes nothing.
    """
    latest: dict[tuple, dict] = {}
    for r in rows:
        r = {"forecast_units_sold": None, **r, "workflow_id": workflow_id}
        missing = [c for c in UPLOAD_COLUMNS if c not in r]
        extra = [c for c in r if c not in UPLOAD_COLUMNS]
        if missing or extra:
            raise InvalidValue(f"planning.weekly_actuals upload: missing {missing or '-'}, unknown {extra or '-'}")
        latest[tuple(r[c] for c in NATURAL_KEY)] = r
    if not latest:
        return UploadResult(0, 0, 0)
    arrays = [[T._adapt(c, r[c]) for r in latest.values()] for c in UPLOAD_COLUMNS]
    flags = [row[0] for row in conn.execute(_UPLOAD, arrays).fetchall()]
    inserted = sum(flags)
    return UploadResult(inserted, len(flags) - inserted, len(latest) - len(flags))


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
