"""infra.recommendations: optimisation recommendations made by agents for a customer.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: create a recommendation (PENDING, logged as recommendation.created), then the life cycle, with
only its legal transitions, each logged as a recommendation.<status> event:

    PENDING -> APPROVED | REJECTED;  APPROVED -> EXECUTING -> COMPLETED | FAILED;
    COMPLETED | FAILED -> ROLLED_BACK

An illegal transition raises IllegalTransition and changes nothing. Leaving PENDING (approved or rejected,
through its approval request or directly) closes the recommendation's open approval request with the same
decision, in the same transaction: no request stays PENDING, in the customer's queue, for a recommendation
that was decided (dbtool/repo/infra/approvals.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from .._lifecycle import Lifecycle
from .._table import Page, Table, utcnow
from ..rows_generated import Recommendations
from . import events

T = Table("infra", "recommendations", Recommendations)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

LIFECYCLE = Lifecycle(T, {
    "APPROVED": ["PENDING"], "REJECTED": ["PENDING"],
    "EXECUTING": ["APPROVED"], "COMPLETED": ["EXECUTING"], "FAILED": ["EXECUTING"],
    "ROLLED_BACK": ["COMPLETED", "FAILED"],
})


DECISIONS = ("APPROVED", "REJECTED")  # the moves out of PENDING


def create(conn: psycopg.Connection, *, customer_id: UUID, type: str, title: str, confidence_score: Decimal,
           agent_id: UUID | None = None, priority: str | None = None, description: str | None = None,
           estimated_savings: Decimal | None = None, data: Mapping[str, Any] | None = None) -> Recommendations:
    """A new PENDING recommendation (priority: the table's default when None), logged as recommendation.created."""
    values: dict[str, Any] = {"customer_id": customer_id, "agent_id": agent_id, "type": type, "title": title,
                              "description": description, "estimated_savings": estimated_savings,
                              "confidence_score": confidence_score, "data": dict(data or {})}
    if priority is not None:
        values["priority"] = priority
    with conn.transaction():
        row = T.insert(conn, **values)
        events.record(conn, customer_id=row.customer_id, agent_id=row.agent_id, recommendation_id=row.id,
                      event_type="recommendation.created", message=row.title,
                      data={"status": row.status, "type": row.type, "priority": row.priority})
    return row


def transition(conn: psycopg.Connection, *, id: UUID, to: str, message: str | None = None,
               decided_by: str | None = None, now: dt.datetime | None = None,
               data: Mapping[str, Any] | None = None) -> Recommendations:
    """Move a recommendation to `to` if its current status allows it, and log a `recommendation.<to>` event
    (`data` added to the event's). A decision (APPROVED, REJECTED) also closes the recommendation's open
    approval request with that decision, `decided_by` as approved_by, `message` as its comment and `now`
    as decided_at (approvals.close_open), all in one transaction."""
    from . import approvals  # approvals imports this module: a module-level import would be circular

    with conn.transaction():
        row = LIFECYCLE.move(conn, to=to, key={"id": id})
        events.record(conn, customer_id=row.customer_id, agent_id=row.agent_id, recommendation_id=row.id,
                      event_type=f"recommendation.{to.lower()}", severity=events.severity_of(to), message=message,
                      data={**(data or {}), "status": to})
        if to in DECISIONS:
            approvals.close_open(conn, recommendation=row, decided_by=decided_by, comment=message,
                                 now=now or utcnow())
    return row


def approve(conn: psycopg.Connection, *, id: UUID, decided_by: str | None = None, comment: str | None = None,
            now: dt.datetime | None = None) -> Recommendations:
    """Approve directly; an open approval request is closed as APPROVED (approved_by = decided_by)."""
    return transition(conn, id=id, to="APPROVED", message=comment, decided_by=decided_by, now=now)


def reject(conn: psycopg.Connection, *, id: UUID, decided_by: str | None = None, comment: str | None = None,
           now: dt.datetime | None = None) -> Recommendations:
    """Reject directly; an open approval request is closed as REJECTED (approved_by = decided_by)."""
    return transition(conn, id=id, to="REJECTED", message=comment, decided_by=decided_by, now=now)


def start(conn: psycopg.Connection, *, id: UUID) -> Recommendations:
    return transition(conn, id=id, to="EXECUTING")


def complete(conn: psycopg.Connection, *, id: UUID) -> Recommendations:
    return transition(conn, id=id, to="COMPLETED")


def fail(conn: psycopg.Connection, *, id: UUID, message: str | None = None) -> Recommendations:
    return transition(conn, id=id, to="FAILED", message=message)


def roll_back(conn: psycopg.Connection, *, id: UUID) -> Recommendations:
    return transition(conn, id=id, to="ROLLED_BACK")


def for_customer(conn: psycopg.Connection, *, customer_id: UUID, status: str, after: tuple | None = None,
                 limit: int = 100) -> Page[Recommendations]:
    """A customer's recommendations in one status (e.g. the PENDING ones awaiting approval)."""
    return T.page(conn, customer_id=customer_id, status=status, after=after, limit=limit)
