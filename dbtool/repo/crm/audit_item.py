"""crm.audit_item: Audit flags and validation issues raised during a recommendation run.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: record flags against a run, keeping the run's n_audit_items in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from .._table import Table
from ..rows_generated import AuditItem
from . import reco_run

T = Table("crm", "audit_item", AuditItem)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

_BUMP = sql.SQL("UPDATE {} SET n_audit_items = n_audit_items + %s WHERE run_id = %s").format(reco_run.T.ident)


def flag(conn: psycopg.Connection, *, run_id: str, flag_code: str, severity: str = "WARNING",
         customer_code: str | None = None, message: str | None = None,
         details: Mapping[str, Any] | None = None) -> AuditItem:
    """Record one flag (customer_code None = a run-level flag)."""
    with conn.transaction():
        row = T.insert(conn, run_id=run_id, customer_code=customer_code, severity=severity, flag_code=flag_code,
                       message=message, details=dict(details or {}))
        conn.execute(_BUMP, (1, run_id))
    return row


def flag_many(conn: psycopg.Connection, *, run_id: str, flags: Iterable[Mapping[str, Any]]) -> int:
    """Record many flags of one run with COPY; each mapping has flag_code and optionally severity,
    customer_code, message, details. Returns how many were written."""
    cols = ("run_id", "customer_code", "severity", "flag_code", "message", "details")
    rows = ((run_id, f.get("customer_code"), f.get("severity", "WARNING"), f["flag_code"], f.get("message"),
             dict(f.get("details") or {})) for f in flags)
    with conn.transaction():
        n = T.load(conn, rows, columns=cols)
        conn.execute(_BUMP, (n, run_id))
    return n


def of_run(conn: psycopg.Connection, *, run_id: str, customer_code: str | None = None) -> list[AuditItem]:
    """A run's flags (of one customer when given), oldest first."""
    key = {"customer_code": customer_code} if customer_code is not None else {}
    out, after = [], None
    while True:
        pg = T.page(conn, run_id=run_id, after=after, limit=1000, **key)
        out += pg.rows
        if pg.next is None:
            return out
        after = pg.next
