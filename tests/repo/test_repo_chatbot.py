"""chatbot behaviours: sessions with a 24 h TTL on a controlled clock, messages, leads, hand-offs,
the daily roll-up, consent and erasure of one user."""

from __future__ import annotations

import datetime as dt

import pytest

from dbtool.repo.chatbot import (
    car_interactions,
    human_handoffs,
    messages,
    metrics_daily,
    qualified_leads,
    sessions,
    users,
)
from dbtool.repo.errors import IllegalTransition, NotFound

T0 = dt.datetime(2025, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)


def _user(conn, phone="+5511999990001"):
    return users.upsert(conn, phone_number=phone, name="Ana")


def test_session_ttl_on_a_controlled_clock(postgresql):
    conn = postgresql
    u = _user(conn)
    s = sessions.open(conn, user_id=u.id, session_id="s1", now=T0)
    assert (s.expires_at, s.last_activity_at, s.is_active) == (T0 + 24 * H, T0, True)
    t = sessions.touch(conn, session_id="s1", now=T0 + 20 * H, new_turn=True)
    assert (t.expires_at, t.turn_id) == (T0 + 44 * H, 1)
    assert sessions.expire_stale(conn, now=T0 + 43 * H) == 0
    assert [x.session_id for x in sessions.active_for_user(conn, user_id=u.id, now=T0 + 43 * H)] == ["s1"]
    sessions.open(conn, user_id=u.id, session_id="s2", now=T0 + 30 * H)
    assert sessions.expire_stale(conn, now=T0 + 44 * H) == 1          # s1 only: s2 lives until T0+54h
    gone = sessions.get(conn, session_id="s1")
    assert (gone.is_active, gone.state) == (False, "CLOSED")
    with pytest.raises(IllegalTransition, match="closed or expired"):
        sessions.touch(conn, session_id="s1", now=T0 + 44 * H)
    with pytest.raises(IllegalTransition, match="session s2 is closed or expired"):  # expired, not yet swept
        sessions.touch(conn, session_id="s2", now=T0 + 55 * H)
    with pytest.raises(NotFound, match="no session nope$"):
        sessions.touch(conn, session_id="nope", now=T0)
    assert sessions.expire_stale(conn, now=T0 + 55 * H) == 1 and sessions.expire_stale(conn, now=T0 + 56 * H) == 0


def test_messages_append_in_order(postgresql):
    conn = postgresql
    s = sessions.open(conn, user_id=_user(conn).id, now=T0)
    messages.append(conn, session_id=s.id, role="user", content="Oi", now=T0 + H, intent="greet", entities={"a": 1})
    messages.append(conn, session_id=s.id, role="assistant", content="Olá!", now=T0 + 2 * H, response_time_ms=300)
    msgs = messages.history(conn, session_id=s.id).rows
    assert [(m.role, m.content) for m in msgs] == [("user", "Oi"), ("assistant", "Olá!")]
    after = sessions.get(conn, id=s.id)
    assert (after.turn_id, after.last_activity_at) == (1, T0 + 2 * H)
    with pytest.raises(NotFound, match="no session with id=-5$"):
        messages.append(conn, session_id=-5, role="user", content="x")


def test_lead_qualifies_at_60(postgresql):
    conn = postgresql
    s = sessions.open(conn, user_id=_user(conn).id, now=T0)
    assert qualified_leads.qualify(conn, session_id=s.id, score=59.99) is None
    assert qualified_leads.page(conn, user_id=s.user_id).rows == []
    lead = qualified_leads.qualify(conn, session_id=s.id, score=60, recommended_cars=["car-1"])
    assert (float(lead.qualification_score), lead.priority, lead.recommended_cars) == (60.0, "LOW", ["car-1"])
    again = qualified_leads.qualify(conn, session_id=s.id, score=90)
    assert (again.id, again.priority) == (lead.id, "HIGH")              # one lead per session, refreshed
    assert [x.id for x in qualified_leads.to_contact(conn).rows] == [lead.id]
    assert qualified_leads.mark_contacted(conn, id=lead.id, now=T0).contacted_at == T0
    assert qualified_leads.to_contact(conn).rows == []
    assert qualified_leads.mark_converted(conn, id=lead.id).converted


def test_handoff_lifecycle(postgresql):
    conn = postgresql
    s = sessions.open(conn, user_id=_user(conn).id, now=T0)
    h = human_handoffs.request(conn, session_id=s.id, reason="wants a human", context={"turn": 3}, now=T0 + H)
    assert (h.status, sessions.get(conn, id=s.id).state) == ("PENDING", "HANDOFF")
    with pytest.raises(IllegalTransition, match="PENDING -> RESOLVED is not allowed"):
        human_handoffs.resolve(conn, id=h.id)
    assert human_handoffs.assign(conn, id=h.id, assigned_to="joao").assigned_to == "joao"
    assert human_handoffs.assign(conn, id=h.id, assigned_to="maria").assigned_to == "maria"
    assert human_handoffs.start(conn, id=h.id).status == "IN_PROGRESS"
    done = human_handoffs.resolve(conn, id=h.id, rating=5, feedback="great", now=T0 + H)
    assert (done.status, done.rating, done.resolved_at) == ("RESOLVED", 5, T0 + H)
    with pytest.raises(IllegalTransition, match="RESOLVED -> CANCELLED is not allowed"):
        human_handoffs.cancel(conn, id=h.id)
    h2 = human_handoffs.request(conn, session_id=s.id, reason="again", now=T0 + 2 * H)
    assert human_handoffs.cancel(conn, id=h2.id).status == "CANCELLED"
    assert human_handoffs.queue(conn, status="PENDING").rows == []
    with pytest.raises(IllegalTransition, match="closed or expired"):  # the TTL passed
        human_handoffs.request(conn, session_id=s.id, reason="late", now=T0 + 25 * H)
    with pytest.raises(NotFound, match="no session with id=-1$"):
        human_handoffs.request(conn, session_id=-1, reason="nobody", now=T0)


def test_daily_rollup_is_an_idempotent_upsert(postgresql):
    conn = postgresql
    day = T0.date()
    a, b = _user(conn, "+1"), _user(conn, "+2")
    s1 = sessions.open(conn, user_id=a.id, now=T0)
    s2 = sessions.open(conn, user_id=b.id, now=T0)
    messages.append(conn, session_id=s1.id, role="user", content="1", now=T0)
    messages.append(conn, session_id=s1.id, role="assistant", content="2", now=T0, response_time_ms=100)
    messages.append(conn, session_id=s2.id, role="assistant", content="3", now=T0 + H, response_time_ms=300)
    messages.append(conn, session_id=s2.id, role="user", content="next day", now=T0 + 24 * H)
    lead = qualified_leads.qualify(conn, session_id=s1.id, score=70)
    conn.execute("UPDATE chatbot.qualified_leads SET created_at = %s", (T0,))
    qualified_leads.mark_converted(conn, id=lead.id)
    first = metrics_daily.roll_up(conn, day=day)
    assert (first.total_messages, first.total_sessions, first.total_users, first.total_qualified_leads) == (3, 2, 2, 1)
    assert (first.avg_response_time_ms, first.conversion_rate) == (200.0, 1.0)
    again = metrics_daily.roll_up(conn, day=day)
    assert (again.id, again.total_messages, again.conversion_rate) == (first.id, 3, 1.0)
    assert conn.execute("SELECT count(*) FROM chatbot.metrics_daily").fetchone()[0] == 1
    empty = metrics_daily.roll_up(conn, day=day - dt.timedelta(days=1))
    assert (empty.total_messages, empty.conversion_rate, empty.avg_response_time_ms) == (0, None, None)


def test_consent_grant_and_withdraw(postgresql):
    conn = postgresql
    u = _user(conn)
    g = users.grant_consent(conn, id=u.id, version="v2", now=T0)
    assert (g.consent, g.consent_at, g.consent_version) == (True, T0, "v2")
    w = users.withdraw_consent(conn, id=u.id, now=T0 + H)
    assert (w.consent, w.consent_at, w.consent_version) == (False, T0 + H, "v2")
    with pytest.raises(NotFound, match="no user with id=-1$"):
        users.grant_consent(conn, id=-1, version="v1")


def _full_user(conn, phone):
    u = _user(conn, phone)
    s = sessions.open(conn, user_id=u.id, now=T0)
    messages.append(conn, session_id=s.id, role="user", content="hi", now=T0 + H)
    car_interactions.insert(conn, session_id=s.id, car_id="car-9", interaction_type="like")
    human_handoffs.request(conn, session_id=s.id, reason="help", now=T0 + H)
    qualified_leads.qualify(conn, session_id=s.id, score=80)
    return u


COUNT = """SELECT (SELECT count(*) FROM chatbot.users WHERE id = %(u)s),
  (SELECT count(*) FROM chatbot.sessions WHERE user_id = %(u)s),
  (SELECT count(*) FROM chatbot.messages m JOIN chatbot.sessions s ON s.id = m.session_id WHERE s.user_id = %(u)s),
  (SELECT count(*) FROM chatbot.qualified_leads WHERE user_id = %(u)s)"""


def test_erasure_removes_everything_of_one_user_and_nothing_of_another(postgresql):
    conn = postgresql
    a, b = _full_user(conn, "+A"), _full_user(conn, "+B")
    seen = []
    counts = users.erase(conn, phone_number="+A", erasers=[lambda c, u: seen.append(u.id) or {"duckdb.x": 2}])
    assert counts == {"chatbot.messages": 1, "chatbot.car_interactions": 1, "chatbot.human_handoffs": 1,
                      "chatbot.qualified_leads": 1, "chatbot.sessions": 1, "chatbot.users": 1, "duckdb.x": 2}
    assert seen == [a.id]
    assert conn.execute(COUNT, {"u": a.id}).fetchone() == (0, 0, 0, 0)
    assert conn.execute(COUNT, {"u": b.id}).fetchone() == (1, 1, 1, 1)
    assert conn.execute("SELECT count(*) FROM chatbot.car_interactions").fetchone()[0] == 1
    with pytest.raises(NotFound, match=f"no user {a.id}$"):
        users.erase(conn, id=a.id)


def test_erasure_is_all_or_nothing_when_a_hook_fails(postgresql):
    conn = postgresql
    a = _full_user(conn, "+A")

    def broken(_conn, _user):
        raise RuntimeError("duckdb unavailable")

    with pytest.raises(RuntimeError, match="^duckdb unavailable$"):
        users.erase(conn, id=a.id, erasers=[broken])
    assert conn.execute(COUNT, {"u": a.id}).fetchone() == (1, 1, 1, 1)


def test_a_message_keeps_its_session_alive_and_a_dead_session_takes_none(postgresql):
    conn = postgresql
    s = sessions.open(conn, user_id=_user(conn).id, now=T0)
    assert s.created_at == T0
    messages.append(conn, session_id=s.id, role="user", content="still there?", now=T0 + 23 * H)
    assert sessions.get(conn, id=s.id).expires_at == T0 + 47 * H  # another 24 h from the message
    assert sessions.expire_stale(conn, now=T0 + 25 * H) == 0
    with pytest.raises(IllegalTransition, match="closed or expired"):
        messages.append(conn, session_id=s.id, role="user", content="too late", now=T0 + 48 * H)
    sessions.close(conn, session_id=s.session_id)
    with pytest.raises(IllegalTransition, match=f"session id={s.id} is closed or expired"):
        messages.append(conn, session_id=s.id, role="user", content="closed", now=T0 + 24 * H)
    assert conn.execute("SELECT count(*) FROM chatbot.messages WHERE session_id = %s", (s.id,)).fetchone()[0] == 1
