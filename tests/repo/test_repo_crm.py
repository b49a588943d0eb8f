"""crm behaviours: contactable customers, silence window, reproducible runs with top-3 items, flags, outcomes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dbtool.repo.crm import (
    audit_item,
    client_master_profile,
    contact_event,
    customer,
    outcome_event,
    product,
    product_alias,
    reco_item,
    reco_run,
)
from dbtool.repo.crm.reco_item import Candidate
from dbtool.repo.errors import IllegalTransition

TODAY = dt.date(2025, 6, 30)


def _customers(conn):
    customer.insert(conn, customer_code="OK", email="ok@example.com")
    customer.insert(conn, customer_code="BOUNCED", email="b@example.com", is_bounced=True)
    customer.insert(conn, customer_code="OPTOUT", email="o@example.com", is_optout=True)
    customer.insert(conn, customer_code="NOMAIL")
    customer.insert(conn, customer_code="BLOCKED", email="x@example.com", is_contactable=False)
    customer.insert(conn, customer_code="OK2", email="ok2@example.com")


def test_contactable_customers(postgresql):
    _customers(postgresql)
    assert [c.customer_code for c in customer.contactable(postgresql).rows] == ["OK", "OK2"]
    first = customer.contactable(postgresql, limit=1)
    assert [c.customer_code for c in first.rows] == ["OK"]
    assert [c.customer_code for c in customer.contactable(postgresql, after=first.next).rows] == ["OK2"]


def test_silence_window(postgresql):
    _customers(postgresql)
    contact_event.insert(postgresql, customer_code="OK", contact_date=TODAY - dt.timedelta(days=5), channel="EMAIL")
    contact_event.insert(postgresql, customer_code="OK2", contact_date=TODAY - dt.timedelta(days=30), channel="SMS")
    codes = lambda days, **kw: [c.customer_code for c in  # noqa: E731
                                customer.outside_silence_window(postgresql, days=days, today=TODAY, **kw).rows]
    assert codes(30, contactable_only=True) == ["OK2"]        # contacted 30 days ago: just outside a 30-day window
    assert codes(31, contactable_only=True) == []
    assert codes(5) == ["BLOCKED", "BOUNCED", "NOMAIL", "OK", "OK2", "OPTOUT"]
    assert "OK" not in codes(6)


def _catalog(conn):
    for k in ("P1", "P2", "P3", "P4"):
        product.insert(conn, product_key=k, product_label=k)
    customer.insert(conn, customer_code="C1", email="c1@example.com")
    customer.insert(conn, customer_code="C2", email="c2@example.com")


CONFIG = {"weights": {"family": 0.5, "aroma": 0.3}, "silence_days": 30, "scenarios": ["REBUY", "UPSELL"]}


def test_config_hash_is_canonical_and_deterministic():
    same = {"silence_days": 30, "scenarios": ["REBUY", "UPSELL"], "weights": {"aroma": 0.3, "family": 0.5}}
    assert reco_run.config_hash(CONFIG) == reco_run.config_hash(same)
    assert reco_run.canonical_json(same) == \
        '{"scenarios":["REBUY","UPSELL"],"silence_days":30,"weights":{"aroma":0.3,"family":0.5}}'
    assert reco_run.config_hash({**CONFIG, "silence_days": 31}) != reco_run.config_hash(CONFIG)
    # sha256 of the canonical text above, computed independently (printf '%s' '<json>' | sha256sum):
    assert reco_run.config_hash(CONFIG) == "366f8a7f4b3534f883dde4e435debe9844205c2d0d25b45a05914c45bac8519a"


def test_run_with_top3_items_and_reasons(postgresql):
    conn = postgresql
    _catalog(conn)
    run = reco_run.create(conn, config=CONFIG, run_id="R1")
    twin = reco_run.create(conn, config=dict(reversed(list(CONFIG.items()))))
    assert run.config_hash == twin.config_hash == reco_run.config_hash(CONFIG) and run.status == "PENDING"
    assert {r.run_id for r in reco_run.with_config(conn, config=CONFIG).rows} == {"R1", twin.run_id}
    assert reco_run.start(conn, run_id="R1").status == "RUNNING"
    cands = {"C1": [Candidate("P1", "REBUY", 0.5, {"family_match": 0.5}), Candidate("P2", "UPSELL", 0.9, {"x": 1}),
                    Candidate("P3", "CROSS_SELL", 0.7, {}, "because"), Candidate("P4", "WINBACK", 0.1),
                    Candidate("P2", "REBUY", 0.2)],
             "C2": [Candidate("P4", "NURTURE", 0.3)]}
    assert reco_item.write_top3(conn, run_id="R1", candidates=cands) == 4
    items = reco_item.for_customer(conn, run_id="R1", customer_code="C1")
    assert [(i.rank, i.product_key, i.scenario) for i in items] == [(1, "P2", "UPSELL"), (2, "P3", "CROSS_SELL"),
                                                                   (3, "P1", "REBUY")]
    assert items[0].reasons_json == {"x": 1} and items[1].explanation == "because"
    assert len(reco_item.of_run(conn, run_id="R1").rows) == 4
    done = reco_run.finish(conn, run_id="R1")
    assert (done.status, done.n_customers, done.n_reco_items) == ("COMPLETED", 2, 4)


def test_audit_flags_and_outcomes(postgresql):
    conn = postgresql
    _catalog(conn)
    reco_run.create(conn, config=CONFIG, run_id="R1")
    reco_item.write_top3(conn, run_id="R1", candidates={"C1": [Candidate("P1", "REBUY", 0.9)]})
    f = audit_item.flag(conn, run_id="R1", flag_code="NO_EMAIL", customer_code="C1", details={"why": "missing"})
    assert (f.severity, f.details) == ("WARNING", {"why": "missing"})
    audit_item.flag(conn, run_id="R1", flag_code="RUN_SLOW", severity="INFO")
    assert audit_item.flag_many(conn, run_id="R1", flags=[{"flag_code": "A"}, {"flag_code": "B",
                                                                             "customer_code": "C2"}]) == 2
    assert reco_run.get(conn, run_id="R1").n_audit_items == 4
    assert [a.flag_code for a in audit_item.of_run(conn, run_id="R1", customer_code="C1")] == ["NO_EMAIL"]
    hit = outcome_event.record(conn, run_id="R1", customer_code="C1", product_key="P1",
                               outcome_date=dt.date(2025, 7, 1), amount_ht=Decimal("12.50"))
    miss = outcome_event.record(conn, run_id="R1", customer_code="C1", product_key="P3",
                                outcome_date=dt.date(2025, 7, 2))
    item = reco_item.for_customer(conn, run_id="R1", customer_code="C1")[0]
    assert (hit.attributed, hit.reco_item_id, hit.amount_ht) == (True, item.id, Decimal("12.50"))
    assert (miss.attributed, miss.reco_item_id) == (False, None)


def test_remaining_crm_tables_round_trip(postgresql):
    conn = postgresql
    _catalog(conn)
    assert product_alias.upsert(conn, alias_label="p one", product_key="P1").product_key == "P1"
    assert product_alias.upsert(conn, alias_label="p one", product_key="P2").product_key == "P2"
    prof = client_master_profile.upsert(conn, customer_code="C1", segment="Champions", r_score=5)
    assert client_master_profile.page(conn, segment="Champions").rows == [prof]


def test_reco_run_moves_only_along_its_lifecycle(postgresql):
    conn = postgresql
    reco_run.create(conn, config=CONFIG, run_id="R9")
    with pytest.raises(IllegalTransition, match="PENDING -> COMPLETED is not allowed"):
        reco_run.finish(conn, run_id="R9")  # PENDING cannot complete without running
    reco_run.start(conn, run_id="R9")
    failed = reco_run.fail(conn, run_id="R9", error_message="scoring crashed")
    assert (failed.status, failed.error_message, failed.finished_at is not None) == ("FAILED", "scoring crashed", True)
    with pytest.raises(IllegalTransition, match="FAILED -> RUNNING is not allowed"):
        reco_run.start(conn, run_id="R9")  # a failed run is not restarted: create a new one
    assert reco_run.get(conn, run_id="R9").status == "FAILED"
