"""crm.reco_item: Recommendations of a run: up to 3 ranked products per customer.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on (run_id, customer_code, rank). Behaviour: write a run's top-3 items per customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from .._table import Page, Table
from ..rows_generated import RecoItem
from . import reco_run

T = Table("crm", "reco_item", RecoItem, natural_key="reco_item_run_id_customer_code_rank_key")
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

TOP_N = 3


@dataclass(frozen=True)
class Candidate:
    """A scored product for one customer; `reasons` is the score breakdown stored as reasons_json."""

    product_key: str
    scenario: str
    score: float
    reasons: Mapping[str, Any] = field(default_factory=dict)
    explanation: str | None = None


def top3(candidates: Iterable[Candidate]) -> list[Candidate]:
    """The best 3 distinct products by score; ties broken by product_key so a rerun ranks identically."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.product_key not in best or c.score > best[c.product_key].score:
            best[c.product_key] = c
    return sorted(best.values(), key=lambda c: (-c.score, c.product_key))[:TOP_N]


_COUNT_RUN = sql.SQL(
    "UPDATE {run} r SET n_customers = s.customers, n_reco_items = s.items"
    " FROM (SELECT count(DISTINCT customer_code) AS customers, count(*) AS items FROM {item} WHERE run_id = %s) s"
    " WHERE r.run_id = %s").format(run=reco_run.T.ident, item=T.ident)


def write_top3(conn: psycopg.Connection, *, run_id: str,
               candidates: Mapping[str, Iterable[Candidate]]) -> int:
    """Write ranks 1..3 of each customer's best candidates for `run_id` (one COPY) and update the run's counts.

    All or nothing; returns the number of items written.
    """
    cols = ("run_id", "customer_code", "scenario", "rank", "product_key", "score", "reasons_json", "explanation")
    rows = ((run_id, customer, c.scenario, rank, c.product_key, c.score, dict(c.reasons), c.explanation)
            for customer in sorted(candidates) for rank, c in enumerate(top3(candidates[customer]), start=1))
    with conn.transaction():
        n = T.load(conn, rows, columns=cols)
        conn.execute(_COUNT_RUN, (run_id, run_id))
    return n


def for_customer(conn: psycopg.Connection, *, run_id: str, customer_code: str) -> list[RecoItem]:
    """A customer's items in a run, by rank."""
    return T.page(conn, by="rank", run_id=run_id, customer_code=customer_code, limit=TOP_N).rows


def of_run(conn: psycopg.Connection, *, run_id: str, after: tuple | None = None, limit: int = 300) -> Page[RecoItem]:
    """A run's items, customer by customer and rank by rank."""
    return T.page(conn, by=("customer_code", "rank"), run_id=run_id, after=after, limit=limit)
