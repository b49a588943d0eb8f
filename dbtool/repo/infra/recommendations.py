"""infra.recommendations: optimisation recommendations made by agents for a customer.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: the life cycle, with only its legal transitions, each logged as an event:

    PENDING -> APPROVED | REJECTED;  APPROVED -> EXECUTING -> COMPLETED | FAILED;
    COMPLETED | FAILED -> ROLLED_BACK

An illegal transition raises IllegalTransition and changes nothing.
"""

from __future__ import annotations

from uuid import UUID

import psycopg

from .._lifecycle import Lifecycle
from .._table import Page, Table
from ..rows_generated import Recommendations
from . import events

T = Table("infra", "recommendations", Recommendations)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

LIFECYCLE = Lifecycle(T, {
    "APPROVED": ["PENDING"], "REJECTED": ["PENDING"],
    "EXECUTING": ["APPROVED"], "COMPLETED": ["EXECUTING"], "FAILED": ["EXECUTING"],
    "ROLLED_BACK": ["COMPLETED", "FAILED"],
})


def transition(conn: psycopg.Connection, *, id: UUID, to: str, message: str | None = None) -> Recommendations:
    """Move a recommendation to `to` if its current status allows it, and log a `recommendation.<to>` event."""
    with conn.transaction():
        row = LIFECYCLE.move(conn, to=to, key={"id": id})
        events.record(conn, customer_id=row.customer_id, agent_id=row.agent_id, recommendation_id=row.id,
                      event_type=f"recommendation.{to.lower()}", message=message,
                      data={"status": to})
    return row


def approve(conn: psycopg.Connection, *, id: UUID) -> Recommendations:
    return transition(conn, id=id, to="APPROVED")


def reject(conn: psycopg.Connection, *, id: UUID) -> Recommendations:
    return transition(conn, id=id, to="REJECTED")


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
