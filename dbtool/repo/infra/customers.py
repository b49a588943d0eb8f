"""infra.customers: Customer accounts of OptiInfra, with their plan and status.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: onboard a customer (logs customer.onboarded) and change its status (ACTIVE, SUSPENDED,
CHURNED; logs customer.<status>), each in one transaction with its event.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from .._lifecycle import Lifecycle
from .._table import Table
from ..rows_generated import Customers
from . import events

T = Table("infra", "customers", Customers)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

# The spec names the states, not the moves: any status may follow any other.
STATUSES = ("ACTIVE", "SUSPENDED", "CHURNED")
LIFECYCLE = Lifecycle(T, {s: [o for o in STATUSES if o != s] for s in STATUSES})


def onboard(conn: psycopg.Connection, *, name: str, email: str, plan: str | None = None,
            monthly_budget: Decimal | None = None, api_key: str | None = None,
            metadata: Mapping[str, Any] | None = None) -> Customers:
    """A new ACTIVE customer, logged as customer.onboarded."""
    values: dict[str, Any] = {"name": name, "email": email, "monthly_budget": monthly_budget, "api_key": api_key,
                              "metadata": dict(metadata or {})}
    if plan is not None:
        values["plan"] = plan
    with conn.transaction():
        row = T.insert(conn, **values)
        events.record(conn, customer_id=row.id, event_type="customer.onboarded", message=f"{row.name} onboarded",
                      data={"status": row.status, "plan": row.plan})
    return row


def set_status(conn: psycopg.Connection, *, id: UUID, status: str, reason: str | None = None) -> Customers:
    """Move a customer to another status (IllegalTransition when it already has it), logged as customer.<status>."""
    with conn.transaction():
        row = LIFECYCLE.move(conn, to=status, key={"id": id})
        events.record(conn, customer_id=row.id, event_type=f"customer.{status.lower()}",
                      severity=events.severity_of(status), message=reason, data={"status": status})
    return row
