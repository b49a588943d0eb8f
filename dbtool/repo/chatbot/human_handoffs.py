"""chatbot.human_handoffs: transfers of a conversation to a human agent.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: the hand-off life cycle, only its legal moves (IllegalTransition otherwise, nothing changed):

    PENDING -> ASSIGNED (again while ASSIGNED: reassign) -> IN_PROGRESS -> RESOLVED;
    PENDING | ASSIGNED | IN_PROGRESS -> CANCELLED
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from .._lifecycle import Lifecycle
from .._table import Page, Table, utcnow
from ..errors import IllegalTransition, NotFound
from ..rows_generated import HumanHandoffs
from . import sessions

T = Table("chatbot", "human_handoffs", HumanHandoffs)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

LIFECYCLE = Lifecycle(T, {"ASSIGNED": ["PENDING", "ASSIGNED"], "IN_PROGRESS": ["ASSIGNED"],
                          "RESOLVED": ["IN_PROGRESS"], "CANCELLED": ["PENDING", "ASSIGNED", "IN_PROGRESS"]})


_TO_HANDOFF = sql.SQL("UPDATE {} SET state = 'HANDOFF' WHERE id = %s AND is_active AND expires_at > %s"
                      ).format(sessions.T.ident)


def request(conn: psycopg.Connection, *, session_id: int, reason: str,
            context: Mapping[str, Any] | None = None, now: dt.datetime | None = None) -> HumanHandoffs:
    """Ask for a human: a PENDING hand-off, and the live session moves to the HANDOFF state.

    A closed or expired session cannot be handed off (IllegalTransition, nothing changed). The
    session stays in HANDOFF once the hand-off ends: the bot does not take a conversation back.
    """
    now = now or utcnow()
    with conn.transaction():
        if conn.execute(_TO_HANDOFF, (session_id, now)).rowcount == 0:
            if sessions.T.get(conn, id=session_id) is None:
                raise NotFound(f"chatbot.sessions: no session with id={session_id}")
            raise IllegalTransition(f"chatbot.sessions: session id={session_id} is closed or expired; "
                                    "no hand-off requested")
        return T.insert(conn, session_id=session_id, reason=reason, context=dict(context or {}), created_at=now)


def assign(conn: psycopg.Connection, *, id: int, assigned_to: str) -> HumanHandoffs:
    return LIFECYCLE.move(conn, to="ASSIGNED", key={"id": id}, also={"assigned_to": assigned_to})


def start(conn: psycopg.Connection, *, id: int) -> HumanHandoffs:
    return LIFECYCLE.move(conn, to="IN_PROGRESS", key={"id": id})


def resolve(conn: psycopg.Connection, *, id: int, rating: int | None = None, feedback: str | None = None,
            now: dt.datetime | None = None) -> HumanHandoffs:
    return LIFECYCLE.move(conn, to="RESOLVED", key={"id": id},
                          also={"rating": rating, "feedback": feedback, "resolved_at": now or utcnow()})


def cancel(conn: psycopg.Connection, *, id: int) -> HumanHandoffs:
    return LIFECYCLE.move(conn, to="CANCELLED", key={"id": id})


def queue(conn: psycopg.Connection, *, status: str = "PENDING", after: tuple | None = None,
          limit: int = 100) -> Page[HumanHandoffs]:
    """Hand-offs in a status, oldest first."""
    return T.page(conn, by="created_at", status=status, after=after, limit=limit)
