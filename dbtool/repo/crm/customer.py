"""crm.customer: Customer master dimension, deduplicated across import batches.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: who may be contacted, and who is outside the silence window.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from ...fetch import fetch_one
from .._table import Page, Table
from ..rows_generated import Customer
from . import contact_event

T = Table("crm", "customer", Customer)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

# Reachable: the flag allows contact, the last email did not bounce, no opt-out, an address is known.
_CONTACTABLE = sql.SQL("is_contactable AND NOT is_bounced AND NOT is_optout AND email IS NOT NULL AND email <> ''")
# No contact_event in the `days` days ending with `today` (contact_date > today - days).
_OUTSIDE_SILENCE = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM {} e WHERE e.customer_code = {}.customer_code"
    " AND e.contact_date > %s::date - %s::integer)").format(contact_event.T.ident, T.ident)


def contactable(conn: psycopg.Connection, *, after: tuple | None = None, limit: int = 1000) -> Page[Customer]:
    """Customers that may be emailed, in customer_code order (keyset pages)."""
    return T.where_page(conn, "contactable", _CONTACTABLE, [], order=T.primary_key, after=after, limit=limit)


def outside_silence_window(conn: psycopg.Connection, *, days: int, today: dt.date | None = None,
                           contactable_only: bool = False, after: tuple | None = None,
                           limit: int = 1000) -> Page[Customer]:
    """Customers with no contact_event in the last `days` days up to `today` (default: the server's date)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    name, where = "silence", _OUTSIDE_SILENCE
    if contactable_only:
        name, where = "silence_contactable", sql.SQL(" AND ").join([_CONTACTABLE, _OUTSIDE_SILENCE])
    if today is None:
        today = fetch_one(conn.execute("SELECT current_date"))[0]
    return T.where_page(conn, name, where, [today, days], order=T.primary_key, after=after, limit=limit)
