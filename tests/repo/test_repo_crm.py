"""crm behaviours: contactable customers, silence window, reproducible runs with top-3 items, flags, outcomes,
active products."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from dbtool import migrate as migrate_lib
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
from helpers import run_dbtool

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


def test_active_products_are_listed_a_page_at_a_time(postgresql):
    conn = postgresql
    for key, active in (("P1", True), ("P2", False), ("P3", True), ("P4", True), ("P5", False)):
        product.insert(conn, product_key=key, product_label=key, is_active=active)
    first = product.list_active(conn, limit=2)
    assert [p.product_key for p in first.rows] == ["P1", "P3"] and first.next == ("P3",)
    second = product.list_active(conn, after=first.next, limit=2)
    assert [p.product_key for p in second.rows] == ["P4"] and second.next is None
    assert [p.product_key for p in product.list_active(conn, active=False).rows] == ["P2", "P5"]
    product.update(conn, product_key="P3", is_active=False)                  # deactivated: out of the list
    assert [p.product_key for p in product.list_active(conn).rows] == ["P1", "P4"]


class _Recording(psycopg.Cursor):
    """Keeps every statement a repository function runs, with its parameters, to EXPLAIN it."""

    seen: list = []

    def execute(self, query, params=None, **kwargs):
        _Recording.seen.append((query, params))
        return super().execute(query, params, **kwargs)


def test_active_products_are_listed_through_the_is_active_index(postgresql):
    conn = postgresql
    # Vintages retire: most products are inactive, and a page of active ones must not filter through them.
    product.load(conn, [(f"W{i:04d}", f"Wine {i}", i % 20 == 0) for i in range(2000)],
                 columns=("product_key", "product_label", "is_active"))
    conn.execute("ANALYZE crm.product")
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.cursor_factory, _Recording.seen = _Recording, []
    try:
        first = product.list_active(conn, limit=10)
        product.list_active(conn, after=first.next, limit=10)
    finally:
        conn.cursor_factory = psycopg.Cursor
    assert len(_Recording.seen) == 2
    for query, params in _Recording.seen:
        plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + query, params).fetchall())
        assert "Index Scan using product_is_active_product_key_idx" in plan and "Sort" not in plan, plan


INDEX_MIGRATION, INDEX = "crm_0004_product_is_active_idx", "crm.product_is_active_product_key_idx"


def _index_valid(url: str):
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (INDEX,)).fetchone()
    return row[0] if row else None


def _crm_findings(url: str) -> list[tuple[str, str]]:
    out = run_dbtool("validate", "-m", "crm", "--format", "json", "--database-url", url)
    return [(f["object"], f["problem"]) for f in json.loads(out.stdout)["findings"] if f["severity"] != "info"]


def test_the_is_active_index_rolls_back_alone_and_an_invalid_one_is_rebuilt(db_url):
    ids = [m.id for m in migrate_lib.load(["crm"])]
    for _ in ids[ids.index(INDEX_MIGRATION) + 1:]:  # migrations added after it, if any
        assert run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", db_url).returncode == 0
    asked = run_dbtool("rollback", "-m", "crm", "--database-url", db_url)  # DROP INDEX CONCURRENTLY: not previewed
    assert asked.returncode == 2 and "cannot be tried first (not transactional)" in asked.stderr, asked.stderr
    out = run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", db_url)
    assert out.returncode == 0 and f"rolled back {INDEX_MIGRATION}" in out.stderr, out.stderr
    assert _index_valid(db_url) is None

    # What a build that failed halfway leaves (a lock timeout, a cancel): the index, INVALID.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX product_is_active_product_key_idx ON crm.product (is_active, product_key)")
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (INDEX,))
    assert ("crm.product.product_is_active_product_key_idx", "invalid") in _crm_findings(db_url)
    out = run_dbtool("migrate", "-m", "crm", "--database-url", db_url)
    assert out.returncode == 0 and f"dropped the INVALID index {INDEX}" in out.stderr, out.stderr
    assert _index_valid(db_url) is True
    assert _crm_findings(db_url) == []
