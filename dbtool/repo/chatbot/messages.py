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
from ..errors import IllegalTransition, NotFound
from ..rows_generated import Messages
from . import sessions

T = Table("chatbot", "messages", Messages)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

# A message is activity: it keeps the session alive for another TTL, like sessions.touch.
_ACTIVITY = sql.SQL("UPDATE {} SET last_activity_at = greatest(last_activity_at, %s),"
                    " expires_at = greatest(expires_at, %s), turn_id = turn_id + %s"
                    " WHERE id = %s AND is_active AND expires_at > %s").format(sessions.T.ident)


def append(conn: psycopg.Connection, *, session_id: int, role: str, content: str,
           now: dt.datetime | None = None, **columns: Any) -> Messages:
    """Add a message to a live session (by sessions.id); a user message starts a new turn.

    The session then lives another TTL from `now`. A closed or expired session takes no
    message (IllegalTransition): open a new one. Other columns (message_id, message_type,
    intent, sentiment, confidence, entities, response_time_ms) are passed by name.
    """
    now = now or utcnow()
    with conn.transaction():
        cur = conn.execute(_ACTIVITY, (now, now + sessions.TTL, int(role == "user"), session_id, now))
        if cur.rowcount == 0:
            if sessions.T.get(conn, id=session_id) is None:
                raise NotFound(f"chatbot.sessions: no session with id={session_id}")
            raise IllegalTransition(f"chatbot.sessions: session id={session_id} is closed or expired; "
                                    "message not stored")
        return T.insert(conn, session_id=session_id, role=role, content=content, created_at=now, **columns)


def history(conn: psycopg.Connection, *, session_id: int, after: tuple | None = None,
            limit: int = 100) -> Page[Messages]:
    """A session's messages in order (keyset on created_at, id)."""
    return T.page(conn, by="created_at", session_id=session_id, after=after, limit=limit)
