"""infra.approvals: a customer's decision on a recommendation (one approval per recommendation).

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on recommendation_id. Behaviour: request a decision (logged as approval.requested), then
decide it: the approval and its recommendation move together (PENDING -> APPROVED | REJECTED), each logged
(approval.<status>, recommendation.<status>), or not at all.

A recommendation decided directly (recommendations.approve / reject) closes its open request with the same
decision in the same transaction (close_open): a request never stays PENDING for a decided recommendation.
Both paths lock the recommendation row first (a request takes FOR SHARE, a decision updates it), so a
request and a direct decision racing each other cannot leave a request open, nor deadlock.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import psycopg
from psycopg import sql

from .._lifecycle import Lifecycle
from .._table import Page, Table, utcnow
from ..errors import IllegalTransition, NotFound, RepoError
from ..rows_generated import Approvals, Recommendations
from . import events, recommendations

T = Table("infra", "approvals", Approvals)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

LIFECYCLE = Lifecycle(T, {"APPROVED": ["PENDING"], "REJECTED": ["PENDING"]})

# The recommendation, locked against a concurrent decision until this transaction ends: a request is only
# made while the recommendation is PENDING, and a decision made meanwhile waits and then closes it.
_LOCK_RECOMMENDATION = sql.SQL("{} WHERE id = %s FOR SHARE").format(recommendations.T.select)
_REQUEST = sql.SQL("INSERT INTO {} (recommendation_id, customer_id) VALUES (%s, %s)"
                   " ON CONFLICT (recommendation_id) DO NOTHING {}").format(T.ident, T.returning)
_CLOSE = sql.SQL("UPDATE {} SET status = %s, approved_by = %s, comment = %s, decided_at = %s"
                 " WHERE recommendation_id = %s AND status = 'PENDING' {}").format(T.ident, T.returning)


def request(conn: psycopg.Connection, *, recommendation_id: UUID) -> Approvals:
    """The (PENDING) approval request of a PENDING recommendation, logged as approval.requested; asking twice
    returns the same row (and logs nothing more).

    A recommendation already decided another way (e.g. approved directly) gets no request that
    could never be decided (IllegalTransition).
    """
    with conn.transaction():
        rec = recommendations.T.run(conn, _LOCK_RECOMMENDATION, (recommendation_id,)).fetchone()
        if rec is None:
            raise NotFound(f"infra.recommendations: no row with id={recommendation_id}")
        if rec.status == "PENDING":
            row = T.run(conn, _REQUEST, (rec.id, rec.customer_id)).fetchone()
            if row is not None:
                events.record(conn, customer_id=row.customer_id, agent_id=rec.agent_id, recommendation_id=rec.id,
                              event_type="approval.requested", message=rec.title,
                              data={"status": row.status, "approval_id": str(row.id)})
                return row
        existing = T.get(conn, recommendation_id=recommendation_id)
        if existing is not None:
            return existing
    raise IllegalTransition(f"infra.recommendations: {recommendation_id} is {rec.status}; only a PENDING "
                            "recommendation is put to the customer")


def close_open(conn: psycopg.Connection, *, recommendation: Recommendations, decided_by: str | None = None,
               comment: str | None = None, now: dt.datetime | None = None) -> Approvals | None:
    """Give the recommendation's open (PENDING) request the recommendation's decision (its status, APPROVED or
    REJECTED), logged as approval.<status>; the closed request, or None when none was open.

    Called by recommendations.transition when a recommendation leaves PENDING, in its transaction.
    """
    to = recommendation.status
    if to not in LIFECYCLE.moves:
        raise RepoError(f"infra.approvals: a request closes with APPROVED or REJECTED, not {to}")
    row = T.run(conn, _CLOSE, (to, decided_by, comment, now or utcnow(), recommendation.id)).fetchone()
    if row is not None:
        events.record(conn, customer_id=row.customer_id, agent_id=recommendation.agent_id,
                      recommendation_id=recommendation.id, event_type=f"approval.{to.lower()}", message=comment,
                      data={"status": to, "approval_id": str(row.id), "approved_by": decided_by})
    return row


def decide(conn: psycopg.Connection, *, recommendation_id: UUID, approved: bool, approved_by: str,
           comment: str | None = None, now: dt.datetime | None = None) -> Approvals:
    """Record the customer's decision on its request and move the recommendation accordingly (atomically).

    NotFound when no approval was requested; IllegalTransition (nothing changed) when the request or the
    recommendation is no longer PENDING.
    """
    to = "APPROVED" if approved else "REJECTED"
    with conn.transaction():
        current = T.get(conn, recommendation_id=recommendation_id)
        if current is None:
            raise NotFound(f"infra.approvals: no approval requested for recommendation {recommendation_id}")
        if current.status != "PENDING":
            raise IllegalTransition(f"infra.approvals recommendation_id={recommendation_id}: {current.status} -> "
                                    f"{to} is not allowed (only from PENDING); nothing changed")
        # The recommendation first (its row lock orders this against a direct decision); its transition
        # closes this request with the decision, approved_by and comment.
        recommendations.transition(conn, id=recommendation_id, to=to, message=comment, decided_by=approved_by,
                                   now=now, data={"approval_id": str(current.id), "approved_by": approved_by})
        row = T.get(conn, recommendation_id=recommendation_id)
        if row is None or row.status != to:  # the request changed between the read above and the transition
            raise IllegalTransition(f"infra.approvals recommendation_id={recommendation_id}: the request is no "
                                    f"longer PENDING; nothing changed")
    return row


def pending(conn: psycopg.Connection, *, customer_id: UUID, after: tuple | None = None,
            limit: int = 100) -> Page[Approvals]:
    """A customer's approval queue."""
    return T.page(conn, customer_id=customer_id, status="PENDING", after=after, limit=limit)
