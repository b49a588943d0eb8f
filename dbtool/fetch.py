"""The one row of a query that always returns one (SELECT count(*), to_regclass(...), current_date...).

psycopg types `fetchone()` as "a row or None"; for these queries None would mean something went badly
wrong, so say so in one line instead of failing later with "'NoneType' object is not subscriptable".
"""

from __future__ import annotations

from typing import TypeVar

import psycopg

from .errors import DbtoolError

Row = TypeVar("Row")


def fetch_one(cur: psycopg.Cursor[Row]) -> Row:
    """The next row of `cur`; DbtoolError if the statement returned none."""
    row = cur.fetchone()
    if row is None:
        raise DbtoolError(f"expected one row, the statement returned none ({cur.statusmessage or 'no status'})")
    return row
