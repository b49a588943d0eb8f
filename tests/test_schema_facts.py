"""The specifications' named rules hold in the built schema (real inserts, real errors)."""

from __future__ import annotations

import pytest
from psycopg import errors

PRODUCT = ("INSERT INTO crm.product (product_key, product_label, premium_tier, aroma_fruit, aroma_floral, "
           "aroma_spice, aroma_mineral, aroma_acidity, aroma_body, aroma_tannin) "
           "VALUES (%s, %s, %s, %s, 3, 3, 3, 3, 3, 3)")


def test_product_aroma_outside_1_to_5_is_rejected(postgresql):
    postgresql.execute(PRODUCT, ("P1", "Label 1", 1, 5))
    with pytest.raises(errors.CheckViolation, match='violates check constraint "product_aroma_fruit_check"'):
        postgresql.execute(PRODUCT, ("P2", "Label 2", 1, 6))


def test_product_premium_tier_outside_0_to_3_is_rejected(postgresql):
    postgresql.execute(PRODUCT, ("P3", "Label 3", 3, 3))
    with pytest.raises(errors.CheckViolation, match='violates check constraint "product_premium_tier_check"'):
        postgresql.execute(PRODUCT, ("P4", "Label 4", 4, 3))


def _reco_fixture(conn):
    conn.execute(PRODUCT, ("P1", "Label 1", 1, 3))
    conn.execute("INSERT INTO crm.customer (customer_code, email) VALUES ('C1', 'c1@example.com')")
    conn.execute("INSERT INTO crm.reco_run (run_id, config_hash) VALUES ('R1', repeat('a', 64))")


RECO_ITEM = ("INSERT INTO crm.reco_item (run_id, customer_code, scenario, rank, product_key, score) "
             "VALUES ('R1', 'C1', %s, %s, 'P1', 0.5)")


def test_reco_item_rank_4_is_rejected(postgresql):
    _reco_fixture(postgresql)
    with pytest.raises(errors.CheckViolation, match='violates check constraint "reco_item_rank_check"'):
        postgresql.execute(RECO_ITEM, ("REBUY", 4))


def test_reco_item_unknown_scenario_is_rejected(postgresql):
    _reco_fixture(postgresql)
    postgresql.execute(RECO_ITEM, ("NURTURE", 1))
    with pytest.raises(errors.CheckViolation, match='violates check constraint "reco_item_scenario_check"'):
        postgresql.execute(RECO_ITEM, ("UPSIDE", 2))


def _infra_customer(conn) -> str:
    return conn.execute("INSERT INTO infra.customers (name, email) VALUES ('Acme', 'a@acme.test') RETURNING id"
                        ).fetchone()[0]


def test_recommendation_confidence_above_1_is_rejected(postgresql):
    cid = _infra_customer(postgresql)
    sql = ("INSERT INTO infra.recommendations (customer_id, type, title, confidence_score) "
           "VALUES (%s, 'rightsizing', 'Resize', %s)")
    postgresql.execute(sql, (cid, 1))
    with pytest.raises(errors.CheckViolation,
                       match='violates check constraint "recommendations_confidence_score_check"'):
        postgresql.execute(sql, (cid, 1.5))


def test_optimization_progress_above_100_is_rejected(postgresql):
    cid = _infra_customer(postgresql)
    sql = "INSERT INTO infra.optimizations (customer_id, progress) VALUES (%s, %s)"
    postgresql.execute(sql, (cid, 100))
    with pytest.raises(errors.CheckViolation, match='violates check constraint "optimizations_progress_check"'):
        postgresql.execute(sql, (cid, 101))


def test_customer_email_is_unique(postgresql):
    _infra_customer(postgresql)
    with pytest.raises(errors.UniqueViolation, match='unique constraint "customers_email_key"'):
        _infra_customer(postgresql)


def test_infra_enums_have_exactly_the_listed_labels(postgresql):
    labels = dict(postgresql.execute(
        "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
        "JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'infra' GROUP BY t.typname").fetchall())
    assert labels == {
        "customer_plan": ["FREE", "STARTUP", "ENTERPRISE"],
        "customer_status": ["ACTIVE", "SUSPENDED", "CHURNED"],
        "agent_type": ["ORCHESTRATOR", "COST", "PERFORMANCE", "RESOURCE", "APPLICATION"],
        "agent_status": ["STARTING", "HEALTHY", "DEGRADED", "FAILED", "STOPPED"],
        "event_severity": ["INFO", "WARNING", "ERROR", "CRITICAL"],
        "recommendation_priority": ["LOW", "MEDIUM", "HIGH", "CRITICAL"],
        "recommendation_status": ["PENDING", "APPROVED", "REJECTED", "EXECUTING", "COMPLETED", "FAILED",
                                  "ROLLED_BACK"],
        "approval_status": ["PENDING", "APPROVED", "REJECTED"],
        "optimization_status": ["QUEUED", "EXECUTING", "COMPLETED", "FAILED", "ROLLED_BACK"],
    }


def test_updated_at_is_kept_current_by_trigger(postgresql):
    cid = _infra_customer(postgresql)
    postgresql.commit()
    before = postgresql.execute("SELECT updated_at FROM infra.customers WHERE id = %s", (cid,)).fetchone()[0]
    postgresql.execute("UPDATE infra.customers SET name = 'Acme 2' WHERE id = %s", (cid,))
    after = postgresql.execute("SELECT updated_at FROM infra.customers WHERE id = %s", (cid,)).fetchone()[0]
    assert after > before


def _planning_fixture(conn):
    conn.execute("INSERT INTO planning.stores (store_id, store_name, store_size_sqft, location_tier, median_income, "
                 "store_format, region, avg_weekly_sales_12mo) VALUES ('S1', 'One', 1000, 'A', 50000, 'mall', "
                 "'north', 100.0)")
    conn.execute("INSERT INTO planning.categories (category_id, category_name) VALUES ('C1', 'Dresses')")
    for wf in ("W1", "W2"):
        conn.execute("INSERT INTO planning.workflows (workflow_id, name) VALUES (%s, %s)", (wf, wf))


WEEKLY = ("INSERT INTO planning.weekly_actuals (workflow_id, week_number, week_start_date, week_end_date, store_id, "
          "category_id, actual_units_sold) VALUES (%s, 1, '2025-01-06', '2025-01-12', 'S1', 'C1', 10)")


def test_duplicate_workflow_week_store_is_rejected(postgresql):
    _planning_fixture(postgresql)
    postgresql.execute(WEEKLY, ("W1",))
    with pytest.raises(errors.UniqueViolation, match='unique constraint "unique_workflow_week_store"'):
        postgresql.execute(WEEKLY, ("W1",))


def test_deleting_a_workflow_deletes_its_weekly_actuals_only(postgresql):
    _planning_fixture(postgresql)
    postgresql.execute(WEEKLY, ("W1",))
    postgresql.execute(WEEKLY, ("W2",))
    postgresql.execute("DELETE FROM planning.workflows WHERE workflow_id = 'W1'")
    rows = postgresql.execute("SELECT workflow_id FROM planning.weekly_actuals").fetchall()
    assert rows == [("W2",)]


def test_qualified_lead_needs_score_60(postgresql):
    uid = postgresql.execute("INSERT INTO chatbot.users (phone_number) VALUES ('+5511999990000') RETURNING id"
                             ).fetchone()[0]
    sql = "INSERT INTO chatbot.qualified_leads (user_id, qualification_score) VALUES (%s, %s)"
    postgresql.execute(sql, (uid, 60))
    with pytest.raises(errors.CheckViolation,
                       match='violates check constraint "qualified_leads_qualification_score_check"'):
        postgresql.execute(sql, (uid, 59.99))


def test_deleting_a_chatbot_user_cascades_to_all_their_rows(postgresql):
    uid = postgresql.execute("INSERT INTO chatbot.users (phone_number) VALUES ('+5511999990001') RETURNING id"
                             ).fetchone()[0]
    sid = postgresql.execute("INSERT INTO chatbot.sessions (session_id, user_id) VALUES ('s1', %s) RETURNING id",
                             (uid,)).fetchone()[0]
    postgresql.execute("INSERT INTO chatbot.messages (session_id, role, content) VALUES (%s, 'user', 'oi')", (sid,))
    postgresql.execute("DELETE FROM chatbot.users WHERE id = %s", (uid,))
    for table in ("sessions", "messages"):
        assert postgresql.execute(f"SELECT count(*) FROM chatbot.{table}").fetchone()[0] == 0


def test_session_expires_24_hours_after_creation(postgresql):
    uid = postgresql.execute("INSERT INTO chatbot.users (phone_number) VALUES ('+5511999990002') RETURNING id"
                             ).fetchone()[0]
    ttl = postgresql.execute("INSERT INTO chatbot.sessions (session_id, user_id) VALUES ('s2', %s) "
                             "RETURNING expires_at - created_at", (uid,)).fetchone()[0]
    assert ttl.total_seconds() == 24 * 3600


def test_crm_has_the_named_indexes_and_30_plus_in_total(postgresql):
    names = {r[0] for r in postgresql.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'crm'")}
    assert {"ix_customer_email", "ix_product_family", "ix_orderline_customer_date", "ix_contact_customer_date",
            "ix_reco_run_customer", "ix_audit_run_customer"} <= names
    assert len(names) >= 30


def test_planning_weekly_actuals_indexes_as_specified(postgresql):
    defs = dict(postgresql.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'planning' AND tablename = 'weekly_actuals'"))
    assert defs["idx_weekly_actuals_workflow"].endswith("(workflow_id, week_number)")
    assert defs["idx_weekly_actuals_store"].endswith("(store_id)")
    assert defs["idx_weekly_actuals_date"].endswith("(week_start_date)")
