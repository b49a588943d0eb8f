"""infra.agents: Agents registered with the platform; global, shared by all customers.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: an agent registers (again after a restart: same (type, name), same row), then reports in with
heartbeats, which set last_heartbeat and, when given, its status; `stale` lists the agents that stopped
reporting. Registering and every change of status log a platform event (customer_id NULL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from uuid import UUID

import psycopg
from psycopg import sql

from ...catalog.expected import load_snapshot
from .._table import Table, utcnow
from ..errors import InvalidValue, NotFound
from ..rows_generated import Agents
from . import events

T = Table("infra", "agents", Agents)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

STATUSES: tuple[str, ...] = tuple(load_snapshot("infra").enums()["infra.agent_status"].labels)

_LOCK = sql.SQL("{} WHERE id = %s FOR NO KEY UPDATE").format(T.select)
# greatest(): a late heartbeat carrying an older time never moves last_heartbeat back (NULL is ignored).
_BEAT = sql.SQL("UPDATE {} SET last_heartbeat = greatest(last_heartbeat, %s), status = coalesce(%s, status)"
                " WHERE id = %s {}").format(T.ident, T.returning)
# A STOPPED agent was stopped on purpose: it is not expected to report. One that never sent a heartbeat
# counts from its registration. Both arms are ranges of agents_last_heartbeat_idx (last_heartbeat).
_STALE = sql.SQL("{} WHERE status <> 'STOPPED' AND (last_heartbeat < %s OR last_heartbeat IS NULL"
                 " AND created_at < %s) ORDER BY last_heartbeat NULLS FIRST, id").format(T.select)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidValue(f"infra.agents: status must be one of {', '.join(STATUSES)}, got {status!r}")


def register(conn: psycopg.Connection, *, type: str, name: str, version: str | None = None,
             endpoint: str | None = None, capabilities: Sequence[str] = (), now: dt.datetime | None = None
             ) -> Agents:
    """Register an agent, or re-register one that restarted (same type and name: same row, new version,
    endpoint and capabilities): status STARTING, last_heartbeat now (registering is reporting in).
    Logged as agent.registered."""
    with conn.transaction():
        row = T.upsert(conn, type=type, name=name, version=version, endpoint=endpoint,
                       capabilities=list(capabilities), status="STARTING", last_heartbeat=now or utcnow())
        events.record(conn, customer_id=None, agent_id=row.id, event_type="agent.registered",
                      message=f"{row.type} agent {row.name} registered",
                      data={"type": row.type, "name": row.name, "version": row.version, "endpoint": row.endpoint,
                            "status": row.status})
    return row


def heartbeat(conn: psycopg.Connection, *, id: UUID, status: str | None = None, now: dt.datetime | None = None
              ) -> Agents:
    """The agent reports in: last_heartbeat becomes `now` (never earlier than it was), status becomes `status`
    when given. A status other than the agent's last one is logged as agent.<status>; a plain heartbeat logs
    nothing (agents beat every few seconds). NotFound for an unknown agent."""
    if status is not None:
        _check_status(status)
    with conn.transaction():
        before = T.run(conn, _LOCK, (id,)).fetchone()
        if before is None:
            raise NotFound(f"infra.agents: no row with id={id}")
        row = T.one(T.run(conn, _BEAT, (now or utcnow(), status, id)))
        if row.status != before.status:
            events.record(conn, customer_id=None, agent_id=row.id, event_type=f"agent.{row.status.lower()}",
                          severity=events.severity_of(row.status),
                          message=f"{row.type} agent {row.name}: {before.status} -> {row.status}",
                          data={"status": row.status, "previous": before.status})
    return row


def stale(conn: psycopg.Connection, *, older_than: dt.timedelta, now: dt.datetime | None = None) -> list[Agents]:
    """Agents that have not reported for longer than `older_than`: last heartbeat (or, never having sent one,
    registration) before now - older_than; STOPPED agents are left out. Longest silent first."""
    if older_than <= dt.timedelta(0):
        raise InvalidValue(f"infra.agents: older_than must be a positive interval, got {older_than}")
    cutoff = (now or utcnow()) - older_than
    return T.run(conn, _STALE, (cutoff, cutoff)).fetchall()
