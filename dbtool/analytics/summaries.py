"""Analytics summaries over the synced DuckDB tables (no PostgreSQL needed at query time).

Days are UTC days. Counts of intents and sentiments are over user messages (the NLP service analyses
what the customer says); response times are over assistant messages that have one.

Funnel (decided here, from synced conversation_context, so it needs no PostgreSQL): each stage is a
subset of the one before it:
  sessions   every synced session
  engaged    sessions with at least one user message
  scored     engaged sessions whose qualification_score is above 0
  qualified  engaged sessions whose qualification_score is 60 or more: the spec's rule for a
             chatbot.qualified_leads row. (Contact and conversion of leads live only in PostgreSQL.)
"""

from __future__ import annotations

import json

import duckdb

from .db import duck_error

QUALIFIED_SCORE = 60
PERCENTILES = (0.5, 0.9, 0.95, 0.99)


def _rows(conn: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> list[tuple]:
    return conn.execute(query, params or []).fetchall()


def messages_per_intent(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    return [{"intent": r[0], "messages": r[1]} for r in _rows(conn, """
        SELECT coalesce(intent, '(none)') AS intent, count(*) AS n FROM message_history WHERE role = 'user'
        GROUP BY ALL ORDER BY n DESC, intent""")]


def sentiment_distribution(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    return [{"sentiment": r[0], "messages": r[1], "share": round(r[2], 4)} for r in _rows(conn, """
        SELECT coalesce(sentiment, '(none)') AS sentiment, count(*) AS n, count(*) / sum(count(*)) OVER ()
        FROM message_history WHERE role = 'user' GROUP BY ALL ORDER BY n DESC, sentiment""")]


def response_time_percentiles(conn: duckdb.DuckDBPyConnection) -> dict:
    cols = ", ".join(f"quantile_cont(response_time_ms, {p})" for p in PERCENTILES)  # our constants
    r = _rows(conn, f"""
        SELECT count(response_time_ms), avg(response_time_ms), min(response_time_ms), max(response_time_ms), {cols}
        FROM message_history WHERE role = 'assistant' AND response_time_ms IS NOT NULL""")[0]
    out = {"messages": r[0], "mean_ms": _num(r[1]), "min_ms": r[2], "max_ms": r[3]}
    out.update({f"p{round(p * 100)}_ms": _num(v) for p, v in zip(PERCENTILES, r[4:])})
    return out


def daily_volume(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    return [{"day": r[0], "messages": r[1], "user_messages": r[2], "sessions": r[3], "users": r[4]}
            for r in _rows(conn, """
        SELECT strftime(timezone('UTC', created_at)::DATE, '%Y-%m-%d') AS day, count(*),
               count(*) FILTER (WHERE role = 'user'), count(DISTINCT session_id), count(DISTINCT phone_number)
        FROM message_history GROUP BY ALL ORDER BY day""")]


def funnel(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    r = _rows(conn, """
        WITH c AS (
            SELECT c.qualification_score AS score,
                   EXISTS (SELECT 1 FROM message_history m
                           WHERE m.session_id = c.session_id AND m.role = 'user') AS engaged
            FROM conversation_context c)
        SELECT count(*), count(*) FILTER (WHERE engaged), count(*) FILTER (WHERE engaged AND score > 0),
               count(*) FILTER (WHERE engaged AND score >= ?)
        FROM c""", [QUALIFIED_SCORE])[0]
    stages = ("sessions", "engaged", "scored", "qualified")
    top = r[0] or 0
    return [{"stage": s, "sessions": n, "share": round(n / top, 4) if top else None} for s, n in zip(stages, r)]


def summary(conn: duckdb.DuckDBPyConnection) -> dict:
    """Every summary at once: the shape `dbtool analytics summary --format json` prints."""
    try:
        return {"messages_per_intent": messages_per_intent(conn),
                "sentiment_distribution": sentiment_distribution(conn),
                "response_time_ms": response_time_percentiles(conn),
                "daily_volume": daily_volume(conn),
                "funnel": funnel(conn)}
    except duckdb.Error as exc:
        raise duck_error("summaries failed", exc) from None


def _num(v):
    return None if v is None else round(float(v), 2)


def render_text(data: dict) -> str:
    lines = ["messages per intent (user messages):"]
    lines += [f"  {r['intent']:32} {r['messages']:>10}" for r in data["messages_per_intent"]] or ["  (none)"]
    lines.append("sentiment distribution (user messages):")
    lines += [f"  {r['sentiment']:32} {r['messages']:>10} {r['share']:>8.1%}"
              for r in data["sentiment_distribution"]] or ["  (none)"]
    rt = data["response_time_ms"]
    lines.append(f"response time (assistant messages, n={rt['messages']}):")
    lines += [f"  {k:32} {'-' if v is None else v:>10}" for k, v in rt.items() if k != "messages"]
    lines.append("daily volume (UTC):")
    lines.append(f"  {'day':12} {'messages':>10} {'user msgs':>10} {'sessions':>10} {'users':>10}")
    lines += [f"  {r['day']:12} {r['messages']:>10} {r['user_messages']:>10} {r['sessions']:>10} {r['users']:>10}"
              for r in data["daily_volume"]] or ["  (none)"]
    lines.append(f"funnel (qualified = score >= {QUALIFIED_SCORE}):")
    lines += [f"  {r['stage']:32} {r['sessions']:>10} {'' if r['share'] is None else format(r['share'], '.1%'):>8}"
              for r in data["funnel"]]
    return "\n".join(lines)


def render_json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False)
