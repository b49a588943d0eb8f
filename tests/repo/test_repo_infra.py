"""infra behaviours: the recommendation life cycle (legal and illegal moves), approvals, optimisations, events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dbtool.repo.errors import IllegalTransition, InvalidValue, NotFound
from dbtool.repo.infra import agents, approvals, customers, events, optimizations, recommendations

ALL = ["PENDING", "APPROVED", "REJECTED", "EXECUTING", "COMPLETED", "FAILED", "ROLLED_BACK"]
LEGAL = {("PENDING", "APPROVED"), ("PENDING", "REJECTED"), ("APPROVED", "EXECUTING"), ("EXECUTING", "COMPLETED"),
         ("EXECUTING", "FAILED"), ("COMPLETED", "ROLLED_BACK"), ("FAILED", "ROLLED_BACK")}


@pytest.fixture
def world(postgresql):
    c = customers.insert(postgresql, name="Acme", email="a@acme.test", plan="ENTERPRISE")
    a = agents.upsert(postgresql, type="COST", name="cost-1", capabilities=["spot"])
    assert agents.upsert(postgresql, type="COST", name="cost-1", version="2").id == a.id  # re-registers, same row
    return postgresql, c, a


def _rec(conn, c, a, status="PENDING"):
    return recommendations.insert(conn, customer_id=c.id, agent_id=a.id, type="spot_migration", title="Use spot",
                                  confidence_score=Decimal("0.9"), status=status)


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize("to", ALL[1:])
def test_only_legal_transitions_happen(world, start, to):
    conn, c, a = world
    rec = _rec(conn, c, a, start)
    if (start, to) in LEGAL:
        assert recommendations.transition(conn, id=rec.id, to=to).status == to
        assert [e.event_type for e in events.for_recommendation(conn, recommendation_id=rec.id)] == \
            [f"recommendation.{to.lower()}"]
    else:
        with pytest.raises(IllegalTransition, match=f"{start} -> {to} is not allowed"):
            recommendations.transition(conn, id=rec.id, to=to)
        assert recommendations.get(conn, id=rec.id) == rec          # nothing changed
        assert events.for_recommendation(conn, recommendation_id=rec.id) == []


def test_unknown_recommendation_is_not_found(world):
    import uuid
    missing = uuid.uuid4()
    with pytest.raises(NotFound, match=f"no row with id={missing}$"):
        recommendations.approve(world[0], id=missing)


def test_approval_then_execution_to_rollback(world):
    conn, c, a = world
    rec = _rec(conn, c, a)
    req = approvals.request(conn, recommendation_id=rec.id)
    assert approvals.request(conn, recommendation_id=rec.id).id == req.id
    assert [p.id for p in approvals.pending(conn, customer_id=c.id).rows] == [req.id]
    dec = approvals.decide(conn, recommendation_id=rec.id, approved=True, approved_by="cto@acme", comment="go")
    assert (dec.status, dec.approved_by, dec.decided_at is not None) == ("APPROVED", "cto@acme", True)
    assert recommendations.get(conn, id=rec.id).status == "APPROVED"
    with pytest.raises(IllegalTransition, match="APPROVED -> REJECTED is not allowed"):
        approvals.decide(conn, recommendation_id=rec.id, approved=False, approved_by="x")
    opt = optimizations.start(conn, recommendation_id=rec.id)
    assert (opt.status, opt.progress, opt.agent_id) == ("EXECUTING", 0, a.id)
    assert optimizations.report_progress(conn, id=opt.id, progress=55).progress == 55
    with pytest.raises(InvalidValue, match="progress must be 0..100, got 101$"):
        optimizations.report_progress(conn, id=opt.id, progress=101)
    done = optimizations.complete(conn, id=opt.id, result={"saved": 1}, actual_savings=Decimal("10.00"))
    assert (done.status, done.progress, done.result) == ("COMPLETED", 100, {"saved": 1})
    with pytest.raises(IllegalTransition, match="COMPLETED -> EXECUTING is not allowed"):
        optimizations.report_progress(conn, id=opt.id, progress=10)
    assert recommendations.get(conn, id=rec.id).status == "COMPLETED"
    assert optimizations.roll_back(conn, id=opt.id).status == "ROLLED_BACK"
    assert recommendations.get(conn, id=rec.id).status == "ROLLED_BACK"
    kinds = sorted(e.event_type for e in events.for_customer(conn, customer_id=c.id).rows)
    assert kinds == ["recommendation.approved", "recommendation.completed", "recommendation.executing",
                     "recommendation.rolled_back"]


def test_rejection_and_failed_execution(world):
    conn, c, a = world
    rec = _rec(conn, c, a)
    approvals.request(conn, recommendation_id=rec.id)
    approvals.decide(conn, recommendation_id=rec.id, approved=False, approved_by="cfo")
    assert recommendations.get(conn, id=rec.id).status == "REJECTED"
    with pytest.raises(IllegalTransition, match="REJECTED -> EXECUTING is not allowed"):
        optimizations.start(conn, recommendation_id=rec.id)     # a rejected recommendation never executes
    assert optimizations.page(conn, customer_id=c.id, by="created_at").rows == []
    rec2 = _rec(conn, c, a, "APPROVED")
    opt = optimizations.start(conn, recommendation_id=rec2.id)
    assert optimizations.fail(conn, id=opt.id, error_message="boom").status == "FAILED"
    assert recommendations.get(conn, id=rec2.id).status == "FAILED"
    assert [r.id for r in recommendations.for_customer(conn, customer_id=c.id, status="FAILED").rows] == [rec2.id]


def test_events_log_pages(world):
    conn, c, a = world
    for i in range(5):
        events.record(conn, customer_id=c.id, event_type="tick", data={"i": i}, agent_id=a.id)
    first = events.for_customer(conn, customer_id=c.id, limit=3)
    rest = events.for_customer(conn, customer_id=c.id, after=first.next, limit=3)
    assert len(first.rows) == 3 and len(rest.rows) == 2 and rest.next is None
    assert {e.id for e in first.rows}.isdisjoint({e.id for e in rest.rows})


def test_no_approval_request_for_a_recommendation_already_decided(world):
    conn, c, a = world
    rec = _rec(conn, c, a)
    recommendations.approve(conn, id=rec.id)
    with pytest.raises(IllegalTransition, match="is APPROVED"):
        approvals.request(conn, recommendation_id=rec.id)
    assert approvals.pending(conn, customer_id=c.id).rows == []
