"""infra.events: system events and audit log entries, a customer's or the platform's.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Every list of events comes back in the order the events were written in: by `seq`, an identity taken at
insert (events written in one transaction share created_at, and ids are random uuids).

Every state change of the seed's entities logs one event, in the transaction that makes it, named
`<entity>.<what>` (event types below). A platform event (an agent's own) has no customer (customer_id NULL).
Generic insert/update/upsert of the tables log nothing: the behaviours named below are the ones that do.

    customer.onboarded                       customers.onboard
    customer.<status>                        customers.set_status (ACTIVE, SUSPENDED, CHURNED)
    agent.registered                         agents.register (a first registration, or a restart)
    agent.<status>                           agents.heartbeat, when the status it reports is a new one
    recommendation.created                   recommendations.create
    recommendation.<status>                  recommendations.transition (approve, reject, start, ...),
                                             optimizations.start/complete/fail/roll_back, approvals.decide
    approval.requested                       approvals.request (the first time only)
    approval.approved | approval.rejected    approvals.decide, and a request closed because its
                                             recommendation was decided directly (data.closed_by)
    optimization.<status>                    optimizations.start (executing), complete, fail, roll_back
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from .._table import Page, Table
from ..rows_generated import Events

T = Table("infra", "events", Events)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

# Severity of the event logged when an entity reaches a status; INFO for any other.
SEVERITY = {"FAILED": "ERROR", "ROLLED_BACK": "WARNING", "DEGRADED": "WARNING", "SUSPENDED": "WARNING",
            "CHURNED": "WARNING"}


def severity_of(status: str) -> str:
    return SEVERITY.get(status, "INFO")


def record(conn: psycopg.Connection, *, customer_id: UUID | None, event_type: str, severity: str = "INFO",
           message: str | None = None, data: Mapping[str, Any] | None = None, agent_id: UUID | None = None,
           recommendation_id: UUID | None = None) -> Events:
    """Append one event to the log; customer_id None for a platform event (an agent's own)."""
    return T.insert(conn, customer_id=customer_id, agent_id=agent_id, recommendation_id=recommendation_id,
                    event_type=event_type, severity=severity, message=message, data=dict(data or {}))


def for_customer(conn: psycopg.Connection, *, customer_id: UUID, after: tuple | None = None,
                 limit: int = 100) -> Page[Events]:
    """A customer's events in the order they were written (keyset on seq, id)."""
    return T.page(conn, by="seq", customer_id=customer_id, after=after, limit=limit)


def for_agent(conn: psycopg.Connection, *, agent_id: UUID, after: tuple | None = None,
              limit: int = 100) -> Page[Events]:
    """An agent's events (its own and those it raised for customers) in the order they were written."""
    return T.page(conn, by="seq", agent_id=agent_id, after=after, limit=limit)


def for_recommendation(conn: psycopg.Connection, *, recommendation_id: UUID) -> list[Events]:
    """The history of one recommendation, in the order it was written."""
    return list(T.iterate(conn, by="seq", recommendation_id=recommendation_id))
