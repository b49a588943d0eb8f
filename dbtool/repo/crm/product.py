"""crm.product: Product dimension (wines) with aroma profile, premium tier and season tags; source of
recommendations.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: the products available for recommendations (is_active), a page at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from .._table import Page, Table
from ..rows_generated import Product

T = Table("crm", "product", Product)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)


def list_active(conn: psycopg.Connection, *, active: bool = True, after: Sequence[Any] | None = None,
                limit: int = 100) -> Page[Product]:
    """The active products (deactivated ones with active=False) in product_key order, `limit` per page; pass
    the page's `next` as `after` for the following one (keyset: each page is a range of the index
    product_is_active_product_key_idx, sql/crm/160_product_is_active_idx.sql, however deep)."""
    return T.page(conn, is_active=active, after=after, limit=limit)
