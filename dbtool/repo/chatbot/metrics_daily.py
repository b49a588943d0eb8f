"""chatbot.metrics_daily: aggregated statistics of one day (UTC).

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on date. Behaviour: roll one day up from the raw tables in one idempotent statement.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from .._table import Table
from ..rows_generated import MetricsDaily
from . import messages, qualified_leads, sessions

T = Table("chatbot", "metrics_daily", MetricsDaily)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

# The day is [d 00:00 UTC, d+1 00:00 UTC). Definitions:
#   total_messages   messages created that day
#   total_sessions   sessions opened that day
#   total_users      distinct users who sent or received a message that day
#   total_qualified_leads  leads created that day
#   avg_response_time_ms   mean response_time_ms of that day's messages that have one
#   conversion_rate  converted / qualified among that day's leads (NULL without leads)
# nlp_accuracy needs labelled data the database does not hold: the roll-up leaves it as it is.
_ROLL_UP = sql.SQL("""
WITH bounds AS (SELECT (%(day)s::date)::timestamp AT TIME ZONE 'UTC' AS lo,
                       (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC' AS hi),
m AS (SELECT count(*) AS n, count(DISTINCT s.user_id) AS users, avg(msg.response_time_ms) AS rt
      FROM {messages} msg JOIN {sessions} s ON s.id = msg.session_id, bounds
      WHERE msg.created_at >= bounds.lo AND msg.created_at < bounds.hi),
s AS (SELECT count(*) AS n FROM {sessions} s, bounds WHERE s.created_at >= bounds.lo AND s.created_at < bounds.hi),
l AS (SELECT count(*) AS n, count(*) FILTER (WHERE converted) AS converted
      FROM {leads} l, bounds WHERE l.created_at >= bounds.lo AND l.created_at < bounds.hi)
INSERT INTO {t} AS t (date, total_messages, total_sessions, total_users, total_qualified_leads,
                      avg_response_time_ms, conversion_rate)
SELECT %(day)s::date, m.n, s.n, m.users, l.n, m.rt, l.converted::double precision / NULLIF(l.n, 0)
FROM m, s, l
ON CONFLICT (date) DO UPDATE SET total_messages = EXCLUDED.total_messages,
    total_sessions = EXCLUDED.total_sessions, total_users = EXCLUDED.total_users,
    total_qualified_leads = EXCLUDED.total_qualified_leads,
    avg_response_time_ms = EXCLUDED.avg_response_time_ms, conversion_rate = EXCLUDED.conversion_rate
{ret}""").format(messages=messages.T.ident, sessions=sessions.T.ident, leads=qualified_leads.T.ident,
                 t=T.ident, ret=T.returning)


def roll_up(conn: psycopg.Connection, *, day: dt.date) -> MetricsDaily:
    """Compute `day`'s metrics and store them (running it again for the same day rewrites the same values)."""
    return T.one(T.run(conn, _ROLL_UP, {"day": day}))
