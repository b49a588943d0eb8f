"""planning behaviours: idempotent weekly-actuals upload with variance, the variance report, table counts."""

from __future__ import annotations

import datetime as dt

import pytest

from dbtool.repo import planning, table_names
from dbtool.repo.errors import InvalidValue
from dbtool.repo.planning import categories, historical_sales, store_clusters, stores, weekly_actuals, workflows

W1 = dt.date(2025, 3, 3)


@pytest.fixture
def plan(postgresql):
    conn = postgresql
    store_clusters.upsert(conn, cluster_id="CL", cluster_name="Urban")
    for s in ("S1", "S2", "S3"):
        stores.upsert(conn, store_id=s, store_name=s, cluster_id="CL", store_size_sqft=1000, location_tier="A",
                      median_income=1, store_format="mall", region="N", avg_weekly_sales_12mo=1.0)
    categories.upsert(conn, category_id="dresses", category_name="Dresses")
    workflows.upsert(conn, workflow_id="wf", name="Plan")
    return conn


def _row(week, store, actual, forecast):
    start = W1 + dt.timedelta(weeks=week - 1)
    return {"week_number": week, "week_start_date": start, "week_end_date": start + dt.timedelta(days=6),
            "store_id": store, "category_id": "dresses", "actual_units_sold": actual, "forecast_units_sold": forecast}


def test_upload_computes_variance_and_is_idempotent(plan):
    batch = [_row(1, "S1", 150, 140), _row(1, "S2", 90, 100), _row(1, "S3", 10, 0), _row(2, "S1", 160, None)]
    assert weekly_actuals.upload(plan, workflow_id="wf", rows=batch) == weekly_actuals.UploadResult(4, 0, 0)
    before = {(r.week_number, r.store_id): r for r in weekly_actuals.page(plan, workflow_id="wf", limit=50).rows}
    assert before[(1, "S1")].variance_pct == pytest.approx(10 / 140)
    assert before[(1, "S2")].variance_pct == pytest.approx(-0.1)
    assert before[(1, "S3")].variance_pct is None and before[(2, "S1")].variance_pct is None
    assert weekly_actuals.upload(plan, workflow_id="wf", rows=batch) == weekly_actuals.UploadResult(0, 0, 4)
    after = {(r.week_number, r.store_id): r for r in weekly_actuals.page(plan, workflow_id="wf", limit=50).rows}
    assert after == before                                     # same rows, same ids, same uploaded_at
    res = weekly_actuals.upload(plan, workflow_id="wf", rows=[_row(1, "S2", 110, 100), _row(1, "S3", 10, 0)])
    assert res == weekly_actuals.UploadResult(0, 1, 1)         # every row of the batch counted once
    s2 = weekly_actuals.get(plan, workflow_id="wf", week_number=1, store_id="S2")
    assert (s2.id, s2.actual_units_sold, s2.variance_pct) == (before[(1, "S2")].id, 110, pytest.approx(0.1))


def test_upload_refuses_a_batch_with_colliding_rows_and_writes_nothing(plan):
    """Issue 13, item 6: two rows for one (workflow, week, store), e.g. two categories, were reduced to one."""
    categories.upsert(plan, category_id="tops", category_name="Tops")
    weekly_actuals.upload(plan, workflow_id="wf", rows=[_row(1, "S1", 150, 140)])
    before = weekly_actuals.page(plan, workflow_id="wf", limit=50).rows
    tops = {**_row(1, "S1", 40, 50), "category_id": "tops"}
    batch = [_row(1, "S1", 151, 140), _row(1, "S2", 90, 100), tops, _row(2, "S3", 5, None), _row(2, "S3", 5, None)]
    with pytest.raises(weekly_actuals.CollidingRows) as refused:
        weekly_actuals.upload(plan, workflow_id="wf", rows=iter(batch))   # a one-shot iterator is enough
    assert str(refused.value) == (
        "planning.weekly_actuals upload for workflow wf: rows 1, 3 (category_id dresses, tops) have the same "
        "week_number=1, store_id=S1; rows 4, 5 (category_id dresses, dresses) have the same week_number=2, "
        "store_id=S3 (rows counted from 1); unique_workflow_week_store holds one row per workflow, week and "
        "store: give each once. Nothing written")
    assert refused.value.collisions == [
        weekly_actuals.Collision(("wf", 1, "S1"), (1, 3), ("dresses", "tops")),
        weekly_actuals.Collision(("wf", 2, "S3"), (4, 5), ("dresses", "dresses"))]
    assert isinstance(refused.value, InvalidValue)
    assert weekly_actuals.page(plan, workflow_id="wf", limit=50).rows == before   # nothing written, nothing changed


def test_upload_refuses_incomplete_rows(plan):
    bad = _row(1, "S1", 1, 1)
    del bad["category_id"]
    with pytest.raises(InvalidValue, match="category_id"):
        weekly_actuals.upload(plan, workflow_id="wf", rows=[bad])


def test_variance_report_per_week(plan):
    weekly_actuals.upload(plan, workflow_id="wf", rows=[_row(1, "S1", 150, 140), _row(1, "S2", 90, 100),
                                                        _row(1, "S3", 7, None), _row(2, "S1", 160, None)])
    w1, w2 = weekly_actuals.variance_report(plan, workflow_id="wf")
    assert (w1.week_number, w1.stores, w1.actual_units, w1.forecast_units) == (1, 3, 247, 240)
    assert w1.variance_pct == pytest.approx((240 - 240) / 240)  # S3 has no forecast: left out of the ratio
    assert (w2.week_number, w2.forecast_units, w2.variance_pct) == (2, None, None)
    assert weekly_actuals.variance_report(plan, workflow_id="wf", week_number=2) == [w2]
    assert len(weekly_actuals.of_week(plan, workflow_id="wf", week_number=1).rows) == 3


def test_table_counts(plan):
    historical_sales.insert(plan, sale_id="H1", week_start_date=W1, category_id="dresses", store_id="S1",
                            units_sold=3)
    rows = {"categories": 1, "historical_sales": 1, "store_clusters": 1, "stores": 3, "weekly_actuals": 0,
            "workflows": 1}
    assert planning.table_counts(plan) == {t: rows.get(t, 0) for t in table_names("planning")}  # every table
