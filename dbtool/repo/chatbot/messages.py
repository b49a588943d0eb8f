"""chatbot.messages: every message exchanged in a session (user, assistant, system).

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on message_id (WhatsApp's id). Behaviour: append a message to a session.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from .._table import Page, Table, utcnow
from ..errors import NotFound
from ..rows_generated import Messages
from . import sessions

T = Table("chatbot", "messages", Messages)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

_ACTIVITY = sql.SQL("UPDATE {} SET last_activity_at = greatest(last_activity_at, %s),"
                    " turn_id = turn_id + %s WHERE id = %s").format(sessions.T.ident)


def append(conn: psycopg.Connection, *, session_id: int, role: str, content: str,
           now: dt.datetime | None = None, **columns: Any) -> Messages:
    """Add a message to a session (by sessions.id); a user message starts a new turn.

    Other columns (message_id, message_type, intent, sentiment, confidence, entities, response_time_ms)
    are passed by name.
    """
    now = now or utcnow()
    with conn.transaction():
        cur = conn.execute(_ACTIVITY, (now, int(role == "user"), session_id))
        if cur.rowcount == 0:
            raise NotFound(f"chatbot.sessions: no session with id={session_id}")
        return T.insert(conn, session_id=session_id, role=role, content=content, created_at=now, **columns)


def history(conn: psycopg.Connection, *, session_id: int, after: tuple | None = None,
            limit: int = 100) -> Page[Messages]:
    """A session's messages in order (keyset on created_at, id)."""
    return T.page(conn, by="created_at", session_id=session_id, after=after, limit=limit)
