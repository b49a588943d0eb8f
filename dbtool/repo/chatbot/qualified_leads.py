"""chatbot.qualified_leads: leads with a qualification score of 60 or more, handed to the dealership.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviour: qualify a session's user when the score reaches QUALIFY_AT; mark contacted / converted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from .._table import Page, Table, utcnow
from ..errors import InvalidValue, NotFound
from ..rows_generated import QualifiedLeads
from . import sessions

T = Table("chatbot", "qualified_leads", QualifiedLeads)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

QUALIFY_AT = 60


def priority_for(score: float) -> str:
    return "HIGH" if score >= 85 else "MEDIUM" if score >= 70 else "LOW"


_LEAD_OF_SESSION = sql.SQL("{} WHERE session_id = %s ORDER BY id LIMIT 1 FOR UPDATE").format(T.select)


def qualify(conn: psycopg.Connection, *, session_id: int, score: float | Decimal,
            recommended_cars: Sequence[Any] | None = None, priority: str | None = None) -> QualifiedLeads | None:
    """Record the session's qualification score; at QUALIFY_AT or more, create (or refresh) its lead.

    Returns the lead, or None when the score is below the threshold. Qualifying a session twice keeps one lead.
    """
    if not 0 <= score <= 100:
        raise InvalidValue(f"qualification score must be 0..100, got {score}")
    with conn.transaction():
        s = sessions.T.update(conn, id=session_id, qualification_score=score)
        if s is None:
            raise NotFound(f"chatbot.sessions: no session with id={session_id}")
        if score < QUALIFY_AT:
            return None
        values = {"qualification_score": score, "priority": priority or priority_for(float(score)),
                  "user_profile": s.user_profile}
        if recommended_cars is not None:
            values["recommended_cars"] = list(recommended_cars)
        lead = T.run(conn, _LEAD_OF_SESSION, (session_id,)).fetchone()
        if lead is not None:
            return T.update(conn, id=lead.id, **values)
        return T.insert(conn, user_id=s.user_id, session_id=session_id, **values)


def mark_contacted(conn: psycopg.Connection, *, id: int, now: dt.datetime | None = None) -> QualifiedLeads | None:
    return T.update(conn, id=id, contacted=True, contacted_at=now or utcnow())


def mark_converted(conn: psycopg.Connection, *, id: int, now: dt.datetime | None = None) -> QualifiedLeads | None:
    return T.update(conn, id=id, converted=True, converted_at=now or utcnow())


def to_contact(conn: psycopg.Connection, *, after: tuple | None = None, limit: int = 100) -> Page[QualifiedLeads]:
    """Leads not contacted yet, oldest first."""
    return T.page(conn, by="created_at", contacted=False, after=after, limit=limit)
