"""infra.approvals: a customer's decision on a recommendation (one approval per recommendation).

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on recommendation_id. Behaviour: request a decision, then decide it; the decision and
the recommendation's own transition (PENDING -> APPROVED | REJECTED) happen together or not at all.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import psycopg
from psycopg import sql

from .._lifecycle import Lifecycle
from .._table import Page, Table, utcnow
from ..errors import IllegalTransition, NotFound
from ..rows_generated import Approvals
from . import recommendations

T = Table("infra", "approvals", Approvals)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

LIFECYCLE = Lifecycle(T, {"APPROVED": ["PENDING"], "REJECTED": ["PENDING"]})

_REQUEST = sql.SQL(
    "INSERT INTO {a} (recommendation_id, customer_id) SELECT id, customer_id FROM {r}"
    " WHERE id = %s AND status = 'PENDING'"
    " ON CONFLICT (recommendation_id) DO UPDATE SET recommendation_id = EXCLUDED.recommendation_id {ret}"
).format(a=T.ident, r=recommendations.T.ident, ret=T.returning)


def request(conn: psycopg.Connection, *, recommendation_id: UUID) -> Approvals:
    """The (PENDING) approval request of a PENDING recommendation; asking twice returns the same row.

    A recommendation already decided another way (e.g. approved directly) gets no request that
    could never be decided (IllegalTransition).
    """
    row = T.run(conn, _REQUEST, (recommendation_id,)).fetchone()
    if row is not None:
        return row
    existing = T.get(conn, recommendation_id=recommendation_id)
    if existing is not None:
        return existing
    rec = recommendations.T.get(conn, id=recommendation_id)
    if rec is None:
        raise NotFound(f"infra.recommendations: no row with id={recommendation_id}")
    raise IllegalTransition(f"infra.recommendations: {recommendation_id} is {rec.status}; only a PENDING "
                            "recommendation is put to the customer")


def decide(conn: psycopg.Connection, *, recommendation_id: UUID, approved: bool, approved_by: str,
           comment: str | None = None, now: dt.datetime | None = None) -> Approvals:
    """Record the customer's decision and move the recommendation accordingly (atomically)."""
    to = "APPROVED" if approved else "REJECTED"
    with conn.transaction():
        row = LIFECYCLE.move(conn, to=to, key={"recommendation_id": recommendation_id},
                             also={"approved_by": approved_by, "comment": comment,
                                   "decided_at": now or utcnow()})
        recommendations.transition(conn, id=recommendation_id, to=to, message=comment)
    return row


def pending(conn: psycopg.Connection, *, customer_id: UUID, after: tuple | None = None,
            limit: int = 100) -> Page[Approvals]:
    """A customer's approval queue."""
    return T.page(conn, customer_id=customer_id, status="PENDING", after=after, limit=limit)
