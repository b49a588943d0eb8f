"""infra.optimizations: executions of recommendations and their results.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: start executing an APPROVED recommendation, report progress 0-100, then complete, fail or
roll back; the recommendation follows each step (EXECUTING, COMPLETED, FAILED, ROLLED_BACK) atomically.
Each step is logged as optimization.<status> (and the recommendation's as recommendation.<status>);
progress reports log nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from .._lifecycle import Lifecycle
from .._table import Table, utcnow
from ..errors import InvalidValue
from ..rows_generated import Optimizations
from . import events, recommendations

T = Table("infra", "optimizations", Optimizations)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

LIFECYCLE = Lifecycle(T, {"EXECUTING": ["QUEUED"], "COMPLETED": ["EXECUTING"], "FAILED": ["EXECUTING"],
                          "ROLLED_BACK": ["COMPLETED", "FAILED"]})
PROGRESS = Lifecycle(T, {"EXECUTING": ["EXECUTING"]})  # progress is only reported while executing


def start(conn: psycopg.Connection, *, recommendation_id: UUID, agent_id: UUID | None = None,
          now: dt.datetime | None = None) -> Optimizations:
    """Start executing an APPROVED recommendation: the recommendation becomes EXECUTING, a new
    optimization row EXECUTING at progress 0."""
    with conn.transaction():
        rec = recommendations.transition(conn, id=recommendation_id, to="EXECUTING")
        row = T.insert(conn, recommendation_id=rec.id, customer_id=rec.customer_id,
                       agent_id=agent_id or rec.agent_id, status="EXECUTING", progress=0, started_at=now or utcnow())
        _log(conn, row, None)
    return row


def _log(conn: psycopg.Connection, row: Optimizations, message: str | None) -> None:
    events.record(conn, customer_id=row.customer_id, agent_id=row.agent_id, recommendation_id=row.recommendation_id,
                  event_type=f"optimization.{row.status.lower()}", severity=events.severity_of(row.status),
                  message=message, data={"status": row.status, "optimization_id": str(row.id)})


def report_progress(conn: psycopg.Connection, *, id: UUID, progress: int) -> Optimizations:
    """Set progress (0..100) of an EXECUTING optimization."""
    if not 0 <= progress <= 100:
        raise InvalidValue(f"infra.optimizations: progress must be 0..100, got {progress}")
    return PROGRESS.move(conn, to="EXECUTING", key={"id": id}, also={"progress": progress})


def _finish(conn, id: UUID, to: str, also: dict, message: str | None = None) -> Optimizations:
    with conn.transaction():
        row = LIFECYCLE.move(conn, to=to, key={"id": id}, also=also)
        _log(conn, row, message)
        if row.recommendation_id is not None:
            recommendations.transition(conn, id=row.recommendation_id, to=to, message=message,
                                       data={"optimization_id": str(row.id)})
    return row


def complete(conn: psycopg.Connection, *, id: UUID, result: Mapping[str, Any] | None = None,
             actual_savings: Decimal | None = None, now: dt.datetime | None = None) -> Optimizations:
    return _finish(conn, id, "COMPLETED", {"progress": 100, "completed_at": now or utcnow(), "result": result,
                                           "actual_savings": actual_savings})


def fail(conn: psycopg.Connection, *, id: UUID, error_message: str, now: dt.datetime | None = None) -> Optimizations:
    return _finish(conn, id, "FAILED", {"completed_at": now or utcnow(), "error_message": error_message},
                   error_message)


def roll_back(conn: psycopg.Connection, *, id: UUID) -> Optimizations:
    return _finish(conn, id, "ROLLED_BACK", {})
