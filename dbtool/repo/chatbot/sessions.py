"""chatbot.sessions: conversation sessions, alive for 24 hours after their last activity.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on session_id. Behaviours: open, touch (extend the TTL), expire stale sessions. Every
function takes `now` (default: the current UTC time) so callers and tests control the clock.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
from psycopg import sql

from .._table import Table, utcnow
from ..errors import IllegalTransition, NotFound
from ..rows_generated import Sessions

T = Table("chatbot", "sessions", Sessions)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

TTL = dt.timedelta(hours=24)


def open(conn: psycopg.Connection, *, user_id: int, session_id: str | None = None, state: str = "GREETING",
         now: dt.datetime | None = None) -> Sessions:
    """A new active session expiring TTL after `now` (session_id defaults to a random UUID hex)."""
    now = now or utcnow()
    return T.insert(conn, session_id=session_id or uuid.uuid4().hex, user_id=user_id, state=state,
                    is_active=True, expires_at=now + TTL, last_activity_at=now, created_at=now)


_TOUCH = sql.SQL("UPDATE {} SET last_activity_at = %s, expires_at = %s, turn_id = turn_id + %s"
                 " WHERE session_id = %s AND is_active AND expires_at > %s {}").format(T.ident, T.returning)


def touch(conn: psycopg.Connection, *, session_id: str, now: dt.datetime | None = None,
          new_turn: bool = False) -> Sessions:
    """Record activity: the session lives TTL from `now` (and counts a turn if `new_turn`).

    An expired or closed session cannot be touched (IllegalTransition); open a new one instead.
    """
    now = now or utcnow()
    row = T.run(conn, _TOUCH, (now, now + TTL, int(new_turn), session_id, now)).fetchone()
    if row is None:
        if T.get(conn, session_id=session_id) is None:
            raise NotFound(f"chatbot.sessions: no session {session_id}")
        raise IllegalTransition(f"chatbot.sessions: session {session_id} is closed or expired; nothing changed")
    return row


_EXPIRE = sql.SQL("UPDATE {} SET is_active = false, state = 'CLOSED' WHERE is_active AND expires_at <= %s"
                  ).format(T.ident)


def expire_stale(conn: psycopg.Connection, *, now: dt.datetime | None = None) -> int:
    """Close every active session whose TTL has passed at `now`; how many were closed."""
    return conn.execute(_EXPIRE, (now or utcnow(),)).rowcount


def close(conn: psycopg.Connection, *, session_id: str) -> Sessions | None:
    return T.update(conn, **_key(conn, session_id), is_active=False, state="CLOSED")


def active_for_user(conn: psycopg.Connection, *, user_id: int, now: dt.datetime | None = None) -> list[Sessions]:
    """A user's active, unexpired sessions."""
    now = now or utcnow()
    return [s for s in T.iterate(conn, user_id=user_id, is_active=True) if s.expires_at > now]


def _key(conn: psycopg.Connection, session_id: str) -> dict:
    row = T.get(conn, session_id=session_id)
    if row is None:
        raise NotFound(f"chatbot.sessions: no session {session_id}")
    return {"id": row.id}
