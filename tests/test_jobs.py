"""Scheduled jobs (issue 13, items 7 and 8): `dbtool jobs expire-sessions | roll-up | purge`, each idempotent,
under a transaction-level advisory lock of its own, with counts in text or JSON; consent keeps a user out of
the analytics store; personal data is tagged in the column comments, and the erasure and retention table
lists come from those tags and the foreign keys of the committed snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import duckdb
import psycopg
import pytest

from dbtool import docs, jobs
from dbtool.analytics.db import init
from dbtool.analytics.sync import sync
from dbtool.catalog.expected import load_snapshot
from dbtool.catalog.model import Catalog, Column, Constraint, Table
from dbtool.config import Target
from dbtool.repo.chatbot import personal_data, users
from helpers import finish_dbtool, run_dbtool, start_dbtool

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


# -- rows --------------------------------------------------------------------------------------------------
def add_user(pg, phone: str, *, consent: bool = True) -> int:
    return pg.execute("INSERT INTO chatbot.users (phone_number, name, consent, consent_at)"
                      " VALUES (%s, 'Ana', %s, CASE WHEN %s THEN now() END) RETURNING id",
                      (phone, consent, consent)).fetchone()[0]


def add_session(pg, user: int, key: str, *, last: dt.datetime, active: bool = False,
                expires: dt.datetime | None = None) -> int:
    """A session whose last activity was at `last` (created then), closed unless `active`."""
    return pg.execute(
        "INSERT INTO chatbot.sessions (session_id, user_id, is_active, state, created_at, last_activity_at,"
        " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (key, user, active, "GREETING" if active else "CLOSED", last, last, expires or last + DAY)).fetchone()[0]


def add_message(pg, session: int, at: dt.datetime, content: str = "oi") -> int:
    return pg.execute("INSERT INTO chatbot.messages (session_id, role, content, created_at)"
                      " VALUES (%s, 'user', %s, %s) RETURNING id", (session, content, at)).fetchone()[0]


def one(pg, query: str, *args):
    return pg.execute(query, args).fetchone()[0]


def run_json(*args: str, code: int = 0) -> dict:
    done = run_dbtool(*args, "--format", "json")
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: ") or last.startswith("Error: "), done.stderr
    return last


# -- item 7: expire-sessions and roll-up as commands ----------------------------------------------------------
def test_expire_sessions_counts_and_is_idempotent(postgresql, db_url):
    now = dt.datetime.now(dt.timezone.utc)
    u = add_user(postgresql, "+5511900000001")
    for key, expires in (("gone-1", now - DAY), ("gone-2", now - dt.timedelta(minutes=1)), ("live", now + DAY)):
        add_session(postgresql, u, key, last=expires - DAY, active=True, expires=expires)
    postgresql.commit()
    out = run_json("jobs", "expire-sessions", "--database-url", db_url)
    assert (out["format"], out["job"], out["status"], out["counts"]) == (
        "dbtool.jobs/1", "expire-sessions", "done", {"chatbot.sessions": 2})
    assert run_json("jobs", "expire-sessions", "--database-url", db_url)["counts"] == {"chatbot.sessions": 0}
    states = dict(postgresql.execute("SELECT session_id, state FROM chatbot.sessions").fetchall())
    assert states == {"gone-1": "CLOSED", "gone-2": "CLOSED", "live": "GREETING"}
    text = run_dbtool("jobs", "expire-sessions", "--database-url", db_url)
    assert text.returncode == 0 and "chatbot.sessions" in text.stdout and "0 row(s)" in text.stdout, text


def test_roll_up_day_is_idempotent_and_reports_the_metrics(postgresql, db_url):
    day = dt.datetime(2025, 5, 1, 10, tzinfo=dt.timezone.utc)
    s = add_session(postgresql, add_user(postgresql, "+5511900000002"), "s1", last=day)
    add_message(postgresql, s, day)
    add_message(postgresql, s, day + dt.timedelta(hours=1))
    add_message(postgresql, s, day + DAY)  # the next day
    postgresql.commit()
    first = run_json("jobs", "roll-up", "--day", "2025-05-01", "--database-url", db_url)
    assert (first["job"], first["day"], first["counts"]) == ("roll-up", "2025-05-01", {"chatbot.metrics_daily": 1})
    assert (first["metrics"]["total_messages"], first["metrics"]["total_sessions"]) == (2, 1)
    again = run_json("jobs", "roll-up", "--day", "2025-05-01", "--database-url", db_url)
    assert again["metrics"] == first["metrics"]
    assert one(postgresql, "SELECT count(*) FROM chatbot.metrics_daily") == 1


def test_roll_up_without_a_day_takes_yesterday_and_refuses_a_bad_one(db_url):
    yesterday = (dt.datetime.now(dt.timezone.utc) - DAY).date().isoformat()
    assert run_json("jobs", "roll-up", "--database-url", db_url)["day"] == yesterday
    for bad in ("2025-13-01", "yesterday-ish", "2999-01-01"):
        line = one_line_error(run_dbtool("jobs", "roll-up", "--day", bad, "--database-url", db_url), 2)
        assert bad in line


def hold_job_lock(db_url: str, job: str) -> psycopg.Connection:
    """Another scheduler's run of `job`: a transaction holding that job's lock."""
    holder = psycopg.connect(db_url, application_name="other-scheduler")
    holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (jobs.LOCK_CLASS, jobs.JOB_KEYS[job]))
    return holder


def test_a_second_run_waits_briefly_then_skips_naming_the_holder(db_url):
    holder = hold_job_lock(db_url, "expire-sessions")
    try:
        started = time.monotonic()
        done = run_dbtool("jobs", "expire-sessions", "--lock-wait", "0.5", "--database-url", db_url)
        line = one_line_error(done, 1)
        assert "skipped" in line and "other-scheduler" in line and f"pid {holder.info.backend_pid}" in line
        assert time.monotonic() - started >= 0.5
        skipped = run_json("jobs", "expire-sessions", "--lock-wait", "0", "--database-url", db_url, code=1)
        assert skipped["status"] == "skipped" and "other-scheduler" in skipped["holder"]
        # One lock per job: another job runs meanwhile.
        assert run_json("jobs", "roll-up", "--lock-wait", "0", "--database-url", db_url)["status"] == "done"
    finally:
        holder.close()
    assert run_json("jobs", "expire-sessions", "--lock-wait", "0", "--database-url", db_url)["status"] == "done"


def test_a_waiting_run_goes_on_when_the_holder_finishes(db_url):
    holder = hold_job_lock(db_url, "purge")
    try:
        proc = start_dbtool("jobs", "purge", "--older-than", "30d", "--no-duckdb", "--lock-wait", "30",
                            "--format", "json", "--database-url", db_url)
        time.sleep(1.0)
        assert proc.poll() is None  # waiting
        holder.commit()  # a transaction-level lock ends with the transaction
        done = finish_dbtool(proc)
    finally:
        holder.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done"


# -- item 8: retention -----------------------------------------------------------------------------------
@pytest.fixture
def aged(postgresql):
    """Sessions of two users around a 90-day cutoff (NOW - 90 days), committed."""
    pg = postgresql
    a = add_user(pg, "+5511911111111")
    old = add_session(pg, a, "old", last=NOW - 100 * DAY)                         # purged
    add_message(pg, old, NOW - 100 * DAY)
    add_message(pg, old, NOW - 100 * DAY + dt.timedelta(hours=2))
    pg.execute("INSERT INTO chatbot.car_interactions (session_id, car_id, interaction_type, created_at)"
               " VALUES (%s, 'car-1', 'like', %s)", (old, NOW - 100 * DAY))
    pg.execute("INSERT INTO chatbot.human_handoffs (session_id, reason, created_at) VALUES (%s, 'help', %s)",
               (old, NOW - 100 * DAY))
    pg.execute("INSERT INTO chatbot.qualified_leads (user_id, session_id, qualification_score, created_at)"
               " VALUES (%s, %s, 70, %s)", (a, old, NOW - 100 * DAY))
    recent = add_session(pg, a, "recent", last=NOW - 10 * DAY)                     # kept: young
    add_message(pg, recent, NOW - 10 * DAY)
    late = add_session(pg, a, "late-handoff", last=NOW - 91 * DAY)                 # kept: a row of it is young
    pg.execute("INSERT INTO chatbot.human_handoffs (session_id, reason, created_at) VALUES (%s, 'late', %s)",
               (late, NOW - 89 * DAY))
    b = add_user(pg, "+5511922222222")
    live = add_session(pg, b, "live-old", last=NOW - 120 * DAY, active=True, expires=NOW + DAY)  # kept: live
    add_message(pg, live, NOW - 120 * DAY)
    pg.commit()
    return pg


def purge_counts(pg, **kw) -> jobs.PurgeResult:
    with pg.transaction():
        return jobs.purge(pg, older_than=90 * DAY, now=NOW, **kw)


def test_purge_takes_ended_sessions_older_than_the_cutoff_with_what_depends_on_them(aged):
    before = {t: one(aged, f"SELECT count(*) FROM {t}") for t in personal_data.retention_plan().tables}
    dry = purge_counts(aged, dry_run=True)
    assert dry.counts == {"chatbot.messages": 2, "chatbot.car_interactions": 1, "chatbot.human_handoffs": 1,
                          "chatbot.sessions": 1}
    assert dry.detached == {"chatbot.qualified_leads": 1}
    assert {t: one(aged, f"SELECT count(*) FROM {t}") for t in before} == before  # dry run: nothing changed
    done = purge_counts(aged)
    assert (done.counts, done.detached) == (dry.counts, dry.detached)
    keys = {r[0] for r in aged.execute("SELECT session_id FROM chatbot.sessions").fetchall()}
    assert keys == {"recent", "late-handoff", "live-old"}
    assert one(aged, "SELECT count(*) FROM chatbot.messages") == 2
    assert aged.execute("SELECT session_id FROM chatbot.qualified_leads").fetchall() == [(None,)]  # the lead stays
    assert one(aged, "SELECT count(*) FROM chatbot.users") == 2  # people are erased on request, not purged
    again = purge_counts(aged)
    assert sum(again.counts.values()) == 0 and again.detached == {"chatbot.qualified_leads": 0}


def test_purge_reaches_the_duckdb_file_too(aged, db_url, tmp_path):
    path = tmp_path / "a.duckdb"
    init(path)
    with duckdb.connect(str(path)) as duck, Target(db_url, "test").connect(autocommit=True) as pg:
        sync(pg, duck)
        assert duck.execute("SELECT count(*) FROM message_history").fetchall()[0][0] == 4
    # the CLI runs at the real time: age the rows by as much
    shift = dt.datetime.now(dt.timezone.utc) - NOW
    for table, cols in (("sessions", ("created_at", "last_activity_at", "expires_at")),
                        ("messages", ("created_at",)), ("car_interactions", ("created_at",)),
                        ("human_handoffs", ("created_at",))):
        sets = ", ".join(f"{c} = {c} + %(shift)s" for c in cols)
        aged.execute(f"UPDATE chatbot.{table} SET {sets}", {"shift": shift})  # table, cols: test constants
    aged.commit()
    dry = run_json("jobs", "purge", "--older-than", "90d", "--dry-run", "--duckdb", str(path), "--database-url", db_url)
    assert (dry["status"], dry["dry_run"]) == ("done", True)
    assert dry["counts"]["chatbot.sessions"] == 1 and dry["counts"]["chatbot.messages"] == 2
    assert dry["counts"]["duckdb.message_history"] == 2 and dry["counts"]["duckdb.conversation_context"] == 1
    with duckdb.connect(str(path)) as duck:
        assert duck.execute("SELECT count(*) FROM message_history").fetchall()[0][0] == 4
    done = run_json("jobs", "purge", "--older-than", "90d", "--duckdb", str(path), "--database-url", db_url)
    assert done["counts"] == dry["counts"] and done["dry_run"] is False
    with duckdb.connect(str(path)) as duck:
        left = {r[0] for r in duck.execute("SELECT session_id FROM conversation_context").fetchall()}
        assert left == {"recent", "late-handoff", "live-old"}
        assert duck.execute("SELECT count(*) FROM message_history").fetchall()[0][0] == 2
    text = run_dbtool("jobs", "purge", "--older-than", "90d", "--duckdb", str(path), "--database-url", db_url)
    assert text.returncode == 0 and "duckdb.message_history" in text.stdout, text


def test_purge_without_a_duckdb_file_says_so(db_url, tmp_path):
    missing = tmp_path / "none.duckdb"
    done = run_dbtool("jobs", "purge", "--older-than", "12w", "--database-url", db_url,
                      env={"DBTOOL_DUCKDB_PATH": str(missing)})
    assert done.returncode == 0, done.stderr
    assert f"no DuckDB analytics file at {missing}" in done.stderr and not missing.exists()


@pytest.mark.parametrize("bad", ["90", "2h", "-5d", "nand", "0d", "1.5x", "99999999999w", "36501d"])
def test_purge_refuses_an_unclear_or_too_short_age(db_url, bad):
    line = one_line_error(run_dbtool("jobs", "purge", "--older-than", bad, "--database-url", db_url), 2)
    assert repr(bad) in line or bad in line


# -- item 8: personal data tags, and the table lists derived from them ------------------------------------
def test_personal_data_is_tagged_in_the_committed_snapshots():
    chatbot = personal_data.personal_columns(load_snapshot("chatbot"), "chatbot")
    assert set(chatbot["chatbot.users"]) == {"phone_number", "name", "email"}
    assert "content" in chatbot["chatbot.messages"] and "user_profile" in chatbot["chatbot.sessions"]
    assert "chatbot.metrics_daily" not in chatbot
    crm = personal_data.personal_columns(load_snapshot("crm"), "crm")
    assert set(crm["crm.customer"]) == {"email", "first_name", "last_name"}


def test_the_live_database_has_the_tags(postgresql):
    comment = one(postgresql, "SELECT col_description('chatbot.users'::regclass, 2)")
    assert comment.endswith(personal_data.TAG)


def test_schema_doc_shows_the_tag():
    text = docs.schema_markdown()
    row = next(line for line in text.splitlines() if line.startswith("| `phone_number` |"))
    assert "**personal data**" in row and "[personal data]" not in row
    assert "**personal data**" in next(line for line in text.splitlines() if line.startswith("| `first_name` |"))


def test_erasure_and_retention_plans_come_from_the_tags_and_the_foreign_keys():
    erase = personal_data.erasure_plan()
    assert erase.tables[-1] == "chatbot.users"
    assert set(erase.tables) == {"chatbot.users", "chatbot.sessions", "chatbot.messages", "chatbot.car_interactions",
                                 "chatbot.human_handoffs", "chatbot.qualified_leads"}
    assert erase.tables.index("chatbot.messages") < erase.tables.index("chatbot.sessions")
    keep = personal_data.retention_plan()
    assert keep.tables[-1] == "chatbot.sessions"
    assert set(keep.tables) == {"chatbot.sessions", "chatbot.messages", "chatbot.car_interactions",
                                "chatbot.human_handoffs"}
    assert keep.detached == ("chatbot.qualified_leads",)
    assert set(keep.kept) == {"chatbot.users", "chatbot.qualified_leads"}


def _with(catalog: Catalog, *objects) -> Catalog:
    return Catalog.of([o for kind in catalog.by_kind.values() for o in kind.values()] + list(objects))


def test_a_new_tagged_table_is_erased_and_purged_without_touching_the_code():
    notes = [Table(schema="chatbot", name="notes"),
             Column(schema="chatbot", table="notes", name="id", position=1, type="bigint", nullable=False),
             Column(schema="chatbot", table="notes", name="session_id", position=2, type="bigint"),
             Column(schema="chatbot", table="notes", name="body", position=3, type="text",
                    comment="What the agent noted. [personal data]"),
             Constraint(schema="chatbot", table="notes", name="notes_session_id_fkey", type="foreign key",
                        columns=("session_id",), references="chatbot.sessions", ref_columns=("id",),
                        on_delete="CASCADE")]
    catalog = _with(load_snapshot("chatbot"), *notes)
    assert "chatbot.notes" in personal_data.plan(catalog, "chatbot.users", strict=True).tables
    assert "chatbot.notes" in personal_data.plan(catalog, "chatbot.sessions").tables


def test_a_tagged_table_no_foreign_key_reaches_is_refused():
    orphan = [Table(schema="chatbot", name="orphan"),
              Column(schema="chatbot", table="orphan", name="phone", position=1, type="text",
                     comment="A phone number. [personal data]")]
    catalog = _with(load_snapshot("chatbot"), *orphan)
    for root in ("chatbot.users", "chatbot.sessions"):
        with pytest.raises(personal_data.PlanError, match="chatbot.orphan .*personal data.* no foreign key"):
            personal_data.plan(catalog, root, strict=root == "chatbot.users")


def test_a_user_erasure_still_counts_every_table(postgresql):
    u = add_user(postgresql, "+5511933333333")
    s = add_session(postgresql, u, "e1", last=NOW)
    add_message(postgresql, s, NOW)
    counts = users.erase(postgresql, id=u)
    assert counts == {"chatbot.messages": 1, "chatbot.car_interactions": 0, "chatbot.human_handoffs": 0,
                      "chatbot.qualified_leads": 0, "chatbot.sessions": 1, "chatbot.users": 1}


# -- item 8: consent keeps a user out of the analytics store ------------------------------------------------
@pytest.fixture
def consenting(postgresql):
    pg = postgresql
    yes, no = add_user(pg, "+5511944444444"), add_user(pg, "+5511955555555", consent=False)
    for user, key in ((yes, "s-yes"), (no, "s-no")):
        s = add_session(pg, user, key, last=NOW, active=True, expires=NOW + 1000 * DAY)
        add_message(pg, s, NOW)
        add_message(pg, s, NOW)
    pg.commit()
    return pg, yes, no


def phones(duck, table: str) -> set[str]:
    return {r[0] for r in duck.execute(f"SELECT DISTINCT phone_number FROM {table}").fetchall()}  # test constant


def fresh_duck():
    from dbtool.analytics.db import apply_schema

    duck = duckdb.connect(":memory:")
    apply_schema(duck)
    return duck


def test_sync_skips_a_user_without_consent(consenting):
    pg, _yes, _no = consenting
    duck = fresh_duck()
    out = sync(pg, duck)
    assert (out.messages, out.sessions) == (2, 1)
    assert phones(duck, "message_history") == phones(duck, "conversation_context") == {"+5511944444444"}


def test_withdrawn_consent_removes_the_user_from_the_analytics_store(consenting):
    pg, yes, _no = consenting
    duck = fresh_duck()
    sync(pg, duck)
    duck.execute("INSERT INTO message_embeddings (id, session_id, phone_number, content, embedding, model_name)"
                 " SELECT id, session_id, phone_number, content, list_resize([1.0]::FLOAT[], 384, 0.0)::FLOAT[384],"
                 " 'm' FROM message_history")
    users.withdraw_consent(pg, id=yes)
    pg.commit()
    out = sync(pg, duck)
    assert out.removed == 5  # 2 messages, their 2 embeddings, 1 context
    for table in ("message_history", "conversation_context", "message_embeddings"):
        assert phones(duck, table) == set(), table


def test_consent_given_later_brings_the_user_in(consenting):
    pg, _yes, no = consenting
    duck = fresh_duck()
    sync(pg, duck)
    users.grant_consent(pg, id=no, version="2025-06")
    pg.commit()
    out = sync(pg, duck)
    assert (out.messages, out.sessions) == (2, 1)
    assert phones(duck, "message_history") == {"+5511944444444", "+5511955555555"}
