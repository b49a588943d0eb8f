"""infra.events: system events and audit log entries of a customer.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from .._table import Page, Table
from ..rows_generated import Events

T = Table("infra", "events", Events)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)


def record(conn: psycopg.Connection, *, customer_id: UUID, event_type: str, severity: str = "INFO",
           message: str | None = None, data: Mapping[str, Any] | None = None, agent_id: UUID | None = None,
           recommendation_id: UUID | None = None) -> Events:
    """Append one event to the log."""
    return T.insert(conn, customer_id=customer_id, agent_id=agent_id, recommendation_id=recommendation_id,
                    event_type=event_type, severity=severity, message=message, data=dict(data or {}))


def for_customer(conn: psycopg.Connection, *, customer_id: UUID, after: tuple | None = None,
                 limit: int = 100) -> Page[Events]:
    """A customer's events, oldest first (keyset on created_at, id)."""
    return T.page(conn, by="created_at", customer_id=customer_id, after=after, limit=limit)


def for_recommendation(conn: psycopg.Connection, *, recommendation_id: UUID) -> list[Events]:
    """The history of one recommendation, oldest first."""
    return sorted(T.iterate(conn, recommendation_id=recommendation_id), key=lambda e: (e.created_at, str(e.id)))
