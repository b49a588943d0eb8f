"""infra behaviours: the recommendation life cycle (legal and illegal moves), approvals, optimisations, events,
agents reporting in."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from dbtool import migrate as migrate_lib
from dbtool.config import Target
from dbtool.errors import DbtoolError
from dbtool.paths import ROOT
from dbtool.repo.errors import IllegalTransition, InvalidValue, NotFound
from dbtool.repo.infra import agents, approvals, customers, events, optimizations, recommendations
from helpers import conn_url

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
    rec = recommendations.create(conn, customer_id=c.id, agent_id=a.id, type="spot_migration", title="Use spot",
                                 confidence_score=Decimal("0.9"))
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
    # One event per state change, in the order they happened (all in this test's one transaction: same created_at).
    kinds = [e.event_type for e in events.for_customer(conn, customer_id=c.id).rows]
    assert kinds == ["recommendation.created", "approval.requested", "recommendation.approved", "approval.approved",
                     "recommendation.executing", "optimization.executing", "optimization.completed",
                     "recommendation.completed", "optimization.rolled_back", "recommendation.rolled_back"]
    assert [e.event_type for e in events.for_recommendation(conn, recommendation_id=rec.id)] == kinds
    approved = events.for_customer(conn, customer_id=c.id).rows[3]
    assert approved.data == {"status": "APPROVED", "approval_id": str(req.id), "approved_by": "cto@acme"}


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


# -- issue 13, item 9: a recommendation decided directly closes its open approval request --------------------------

@pytest.mark.parametrize("decision", ["APPROVED", "REJECTED"])
def test_a_direct_decision_closes_the_open_request_with_it(world, decision):
    conn, c, a = world
    rec = recommendations.create(conn, customer_id=c.id, agent_id=a.id, type="rightsizing", title="Downsize",
                                 confidence_score=Decimal("0.5"))
    req = approvals.request(conn, recommendation_id=rec.id)
    at = dt.datetime(2025, 5, 1, 12, tzinfo=dt.timezone.utc)
    move = recommendations.approve if decision == "APPROVED" else recommendations.reject
    move(conn, id=rec.id, decided_by="ops@acme", comment="decided in the console", now=at)
    closed = approvals.get(conn, id=req.id)
    assert (closed.status, closed.approved_by, closed.comment, closed.decided_at) == \
        (decision, "ops@acme", "decided in the console", at)
    assert approvals.pending(conn, customer_id=c.id).rows == []          # out of the customer's queue
    with pytest.raises(IllegalTransition, match=f"{decision} -> APPROVED is not allowed"):
        approvals.decide(conn, recommendation_id=rec.id, approved=True, approved_by="cto@acme")
    assert approvals.get(conn, id=req.id) == closed
    log = [(e.event_type, e.data.get("approval_id")) for e in events.for_recommendation(conn, recommendation_id=rec.id)]
    assert log == [("recommendation.created", None), ("approval.requested", str(req.id)),
                   (f"recommendation.{decision.lower()}", None), (f"approval.{decision.lower()}", str(req.id))]


def test_a_decision_without_a_request_closes_nothing_and_decide_needs_a_request(world):
    conn, c, a = world
    rec = recommendations.create(conn, customer_id=c.id, agent_id=a.id, type="rightsizing", title="Downsize",
                                 confidence_score=Decimal("0.5"))
    with pytest.raises(NotFound, match="no approval requested"):
        approvals.decide(conn, recommendation_id=rec.id, approved=True, approved_by="cto@acme")
    assert recommendations.get(conn, id=rec.id).status == "PENDING"      # nothing changed
    recommendations.approve(conn, id=rec.id)
    assert approvals.get(conn, recommendation_id=rec.id) is None


def _wait_until_blocked(url: str, pid: int, thread: threading.Thread, seconds: float = 5) -> bool:
    """Whether backend `pid` waits for a lock within `seconds` (False at once when the thread has finished)."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as watcher:  # autocommit: a fresh pg_stat_activity each time
        while time.monotonic() < deadline and thread.is_alive():
            if watcher.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                               (pid,)).fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def test_a_request_racing_a_direct_decision_is_closed_not_left_open(world):
    """The request locks the recommendation (FOR SHARE) until it commits: the direct approval waits, then closes it."""
    conn, c, a = world
    rec = recommendations.create(conn, customer_id=c.id, agent_id=a.id, type="rightsizing", title="Downsize",
                                 confidence_score=Decimal("0.5"))
    conn.commit()
    url = conn_url(conn)
    with psycopg.connect(url) as requester, psycopg.connect(url) as decider:
        requester.execute("SELECT 1")                                    # the caller's transaction: open
        approvals.request(requester, recommendation_id=rec.id)           # not committed yet
        failed: list[BaseException] = []

        def decide_directly():
            try:
                recommendations.approve(decider, id=rec.id, decided_by="ops@acme")
                decider.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failed.append(exc)

        thread = threading.Thread(target=decide_directly)
        thread.start()
        blocked = _wait_until_blocked(url, decider.info.backend_pid, thread)
        requester.commit()
        thread.join(10)
        assert not thread.is_alive() and failed == []
    conn.rollback()
    assert blocked, "the direct approval did not wait for the request's transaction"
    req = approvals.get(conn, recommendation_id=rec.id)
    assert (req.status, req.approved_by) == ("APPROVED", "ops@acme")
    assert approvals.pending(conn, customer_id=c.id).rows == []


def test_migration_closes_requests_left_open_before(world):
    """sql/infra/130: requests stuck PENDING under a decided recommendation are closed, each logged; idempotent."""
    conn, c, a = world
    stuck = {}
    for final in ("APPROVED", "REJECTED", "COMPLETED"):
        rec = _rec(conn, c, a)
        stuck[final] = (rec.id, approvals.request(conn, recommendation_id=rec.id).id)
        recommendations.update(conn, id=rec.id, status=final)        # as the code before issue 13 left them
    waiting = _rec(conn, c, a)
    open_req = approvals.request(conn, recommendation_id=waiting.id)
    conn.commit()
    path = ROOT / "sql" / "infra" / "130_approvals_closed_by_recommendation.sql"
    for _ in range(2):
        out = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), conn_url(conn)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    expected = {"APPROVED": "APPROVED", "REJECTED": "REJECTED", "COMPLETED": "APPROVED"}
    for final, (rec_id, req_id) in stuck.items():
        req = approvals.get(conn, id=req_id)
        assert (req.status, req.decided_at is not None) == (expected[final], True), final
        closing = [e for e in events.for_recommendation(conn, recommendation_id=rec_id)
                   if e.event_type.startswith("approval.") and e.event_type != "approval.requested"]
        assert [(e.event_type, e.data["closed_by"]) for e in closing] == \
            [(f"approval.{expected[final].lower()}", "recommendation")]      # once, though the file ran twice
    assert approvals.get(conn, id=open_req.id).status == "PENDING"   # its recommendation is still PENDING


# -- issue 13, item 10: events in the order they were written; every state change logs one ------------------------

def test_events_written_in_one_transaction_come_back_in_that_order(world):
    conn, c, a = world
    rec = _rec(conn, c, a)
    for i in range(30):  # one transaction: every created_at is the same
        events.record(conn, customer_id=c.id, agent_id=a.id, recommendation_id=rec.id, event_type="tick",
                      data={"i": i})
    assert len({e.created_at for e in events.for_recommendation(conn, recommendation_id=rec.id)}) == 1
    paged, after = [], None
    while True:
        page = events.for_customer(conn, customer_id=c.id, after=after, limit=7)
        paged += page.rows
        if page.next is None:
            break
        after = page.next
    assert [e.data["i"] for e in paged] == list(range(30))
    assert [e.data["i"] for e in events.for_recommendation(conn, recommendation_id=rec.id)] == list(range(30))
    mine = [e for e in events.for_agent(conn, agent_id=a.id, limit=1000).rows if e.event_type == "tick"]
    assert [e.data["i"] for e in mine] == list(range(30))


def test_creating_registering_and_requesting_log_events(world):
    conn, c, _ = world
    agent = agents.register(conn, type="PERFORMANCE", name="perf-1", version="1.2", endpoint="http://perf:8002",
                            capabilities=["scaling"])
    assert (agent.status, agent.last_heartbeat is not None) == ("STARTING", True)
    (registered,) = events.for_agent(conn, agent_id=agent.id).rows
    assert (registered.event_type, registered.customer_id, registered.data["version"]) == \
        ("agent.registered", None, "1.2")                                # a platform event: no customer
    again = agents.register(conn, type="PERFORMANCE", name="perf-1", version="1.3")
    assert again.id == agent.id and again.version == "1.3"               # a restart: same row, logged again
    rec = recommendations.create(conn, customer_id=c.id, agent_id=agent.id, type="scaling", title="Scale out",
                                 confidence_score=Decimal("0.8"), priority="HIGH", estimated_savings=Decimal("12"))
    assert (rec.status, rec.priority) == ("PENDING", "HIGH")
    req = approvals.request(conn, recommendation_id=rec.id)
    assert approvals.request(conn, recommendation_id=rec.id) == req   # asking twice: one request, one event
    assert [(e.event_type, e.customer_id) for e in events.for_agent(conn, agent_id=agent.id).rows] == [
        ("agent.registered", None), ("agent.registered", None),
        ("recommendation.created", c.id), ("approval.requested", c.id)]


def test_customer_onboarding_and_status_changes_are_logged(postgresql):
    conn = postgresql
    c = customers.onboard(conn, name="Beta", email="ops@beta.test", plan="STARTUP")
    assert (c.status, c.plan) == ("ACTIVE", "STARTUP")
    customers.set_status(conn, id=c.id, status="SUSPENDED", reason="unpaid invoice")
    with pytest.raises(IllegalTransition, match="SUSPENDED -> SUSPENDED is not allowed"):
        customers.set_status(conn, id=c.id, status="SUSPENDED")
    customers.set_status(conn, id=c.id, status="ACTIVE")
    log = [(e.event_type, e.severity, e.message) for e in events.for_customer(conn, customer_id=c.id).rows]
    assert log == [("customer.onboarded", "INFO", "Beta onboarded"),
                   ("customer.suspended", "WARNING", "unpaid invoice"), ("customer.active", "INFO", None)]


def test_a_failed_optimization_is_logged_as_an_error(world):
    conn, c, a = world
    rec = _rec(conn, c, a, "APPROVED")
    opt = optimizations.start(conn, recommendation_id=rec.id)
    optimizations.fail(conn, id=opt.id, error_message="quota exceeded")
    log = [(e.event_type, e.severity, e.message) for e in events.for_recommendation(conn, recommendation_id=rec.id)]
    assert log == [("recommendation.executing", "INFO", None), ("optimization.executing", "INFO", None),
                   ("optimization.failed", "ERROR", "quota exceeded"),
                   ("recommendation.failed", "ERROR", "quota exceeded")]


def test_events_existing_before_the_migration_are_numbered_by_time(db_url):
    """infra_0003 on a database that already has events: seq follows created_at, then new events follow them."""
    target = Target(db_url, "test")
    migrate_lib.rollback(target, ["infra"], say=lambda _m: None)         # back to before infra_0003
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'infra' "
                            "AND table_name = 'events' AND column_name = 'seq'").fetchone()[0] == 0
        c = customers.insert(conn, name="Old", email="old@example.com")
        for minutes in (30, 10, 20):                                      # written out of time order
            conn.execute("INSERT INTO infra.events (customer_id, event_type, created_at) VALUES (%s, %s, %s)",
                         (c.id, f"old.{minutes}", t0 + dt.timedelta(minutes=minutes)))
    migrate_lib.migrate(target, ["infra"], say=lambda _m: None)
    with psycopg.connect(db_url) as conn:
        events.record(conn, customer_id=c.id, event_type="new")
        assert [e.event_type for e in events.for_customer(conn, customer_id=c.id).rows] == \
            ["old.10", "old.20", "old.30", "new"]


def test_rollback_refuses_while_platform_events_exist(db_url):
    target = Target(db_url, "test")
    with psycopg.connect(db_url) as conn:
        agents.register(conn, type="COST", name="cost-9")
    with pytest.raises(DbtoolError, match=r"infra.events holds 1 platform event\(s\) \(customer_id NULL\)"):
        migrate_lib.rollback(target, ["infra"], say=lambda _m: None)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM infra.events WHERE customer_id IS NULL").fetchone()[0] == 1
        conn.execute("DELETE FROM infra.events WHERE customer_id IS NULL")
    migrate_lib.rollback(target, ["infra"], say=lambda _m: None)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'infra' "
                            "AND table_name = 'events' AND column_name = 'customer_id'").fetchone()[0] == "NO"


# -- issue 13, item 11: agents report in; the stale ones are found --------------------------------------------------

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.timezone.utc)


def test_heartbeats_set_last_heartbeat_and_log_status_changes(postgresql):
    conn = postgresql
    agent = agents.register(conn, type="RESOURCE", name="res-1", now=T0)
    beat = agents.heartbeat(conn, id=agent.id, status="HEALTHY", now=T0 + dt.timedelta(seconds=10))
    assert (beat.status, beat.last_heartbeat) == ("HEALTHY", T0 + dt.timedelta(seconds=10))
    assert agents.heartbeat(conn, id=agent.id, now=T0 + dt.timedelta(seconds=20)).last_heartbeat == \
        T0 + dt.timedelta(seconds=20)
    late = agents.heartbeat(conn, id=agent.id, now=T0 + dt.timedelta(seconds=15))   # delivered out of order
    assert late.last_heartbeat == T0 + dt.timedelta(seconds=20)
    agents.heartbeat(conn, id=agent.id, status="HEALTHY", now=T0 + dt.timedelta(seconds=30))  # same status
    agents.heartbeat(conn, id=agent.id, status="DEGRADED", now=T0 + dt.timedelta(seconds=40))
    log = [(e.event_type, e.severity, e.data.get("previous")) for e in events.for_agent(conn, agent_id=agent.id).rows]
    assert log == [("agent.registered", "INFO", None), ("agent.healthy", "INFO", "STARTING"),
                   ("agent.degraded", "WARNING", "HEALTHY")]
    import uuid
    with pytest.raises(NotFound, match="no row with id="):
        agents.heartbeat(conn, id=uuid.uuid4())
    with pytest.raises(InvalidValue, match="status must be one of STARTING, HEALTHY"):
        agents.heartbeat(conn, id=agent.id, status="ASLEEP")


def test_stale_agents_are_those_silent_for_longer_than_the_interval(postgresql):
    conn = postgresql
    minute = dt.timedelta(minutes=1)
    silent = agents.register(conn, type="COST", name="silent", now=T0)
    fresh = agents.register(conn, type="COST", name="fresh", now=T0)
    stopped = agents.register(conn, type="COST", name="stopped", now=T0)
    agents.heartbeat(conn, id=fresh.id, status="HEALTHY", now=T0 + 9 * minute)
    agents.heartbeat(conn, id=stopped.id, status="STOPPED", now=T0 + minute)
    never = agents.insert(conn, type="COST", name="never")              # registered without any heartbeat
    assert never.last_heartbeat is None
    assert agents.stale(conn, older_than=5 * minute, now=T0 + 10 * minute) == [silent]
    later = never.created_at + 10 * minute
    assert [a.name for a in agents.stale(conn, older_than=5 * minute, now=later)] == ["never", "silent", "fresh"]
    assert agents.stale(conn, older_than=5 * minute, now=T0 + 2 * minute) == []
    with pytest.raises(InvalidValue, match="older_than must be a positive interval"):
        agents.stale(conn, older_than=dt.timedelta(0))


def test_stale_agents_are_found_through_the_heartbeat_index(postgresql):
    conn = postgresql
    conn.execute("SET LOCAL enable_seqscan = off")
    cutoff = T0
    plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + agents._STALE, (cutoff, cutoff)).fetchall())
    assert "agents_last_heartbeat_idx" in plan, plan
