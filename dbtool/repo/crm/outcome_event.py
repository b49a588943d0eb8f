"""crm.outcome_event: Purchases observed after a run's campaign, used to measure and learn from recommendations.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: record an outcome against a run, matched to the recommendation it fulfils.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
from psycopg import sql

from .._table import Table
from ..rows_generated import OutcomeEvent
from . import reco_item

T = Table("crm", "outcome_event", OutcomeEvent)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

# One statement: the purchase is attributed when the run recommended that product to that customer.
_RECORD = sql.SQL(
    "INSERT INTO {out} (run_id, customer_code, product_key, reco_item_id, outcome_date, doc_ref, amount_ht,"
    " attributed)"
    " SELECT %(run_id)s, %(customer_code)s, %(product_key)s, ri.id, %(outcome_date)s, %(doc_ref)s, %(amount_ht)s,"
    " ri.id IS NOT NULL"
    " FROM (SELECT 1) one LEFT JOIN {item} ri ON ri.run_id = %(run_id)s AND ri.customer_code = %(customer_code)s"
    " AND ri.product_key = %(product_key)s {ret}").format(out=T.ident, item=reco_item.T.ident, ret=T.returning)


def record(conn: psycopg.Connection, *, run_id: str, customer_code: str, outcome_date: dt.date,
           product_key: str | None = None, doc_ref: str | None = None,
           amount_ht: Decimal | float | None = None) -> OutcomeEvent:
    """Record a purchase against a run; linked to (and attributed to) the matching reco_item if there is one."""
    params = {"run_id": run_id, "customer_code": customer_code, "product_key": product_key,
              "outcome_date": outcome_date, "doc_ref": T._adapt("doc_ref", doc_ref), "amount_ht": amount_ht}
    return T.one(T.run(conn, _RECORD, params))
