"""`dbtool trace`: pending migrations (or files) run on a scratch copy of the target, statement by statement;
the locks, rewrites and constraint validity the server really shows, and the copy always dropped."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from dbtool import migration_steps
from dbtool.paths import modules
from helpers import add_migration, copy_project, finish_dbtool, run_dbtool, start_dbtool

SCRATCH = "SELECT datname FROM pg_database WHERE datname LIKE 'dbtool\\_trace\\_%' ORDER BY 1"


@pytest.fixture
def root(tmp_path) -> Path:
    return copy_project(tmp_path / "co")


def trace(root: Path, db_url: str, *args: str, timeout: float = 180):
    out = run_dbtool("trace", "--database-url", db_url, *args, env={"DBTOOL_ROOT": str(root)}, timeout=timeout)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def scratch_databases(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(SCRATCH).fetchall()]


def statement(doc: dict, migration: str, line: int) -> dict:
    m = next(m for m in doc["migrations"] if m["id"] == migration)
    return next(s for s in m["statements"] if s["line"] == line)


def locks(s: dict) -> set[tuple[str, str]]:
    return {(x["mode"], x["relation"]) for x in s["locks"]}


def rewritten(s: dict) -> set[str]:
    return {r["relation"] for r in s["rewritten"]}


def test_pending_migrations_report_real_locks_rewrites_and_validity(root, db_url):
    add_migration(root, "crm", "crm_0901_types", {"901_types.sql": """\
-- The copy has the module roles' grants: this fails on a copy without them.
DO $$ BEGIN IF NOT has_table_privilege('crm_ro', 'crm.customer', 'SELECT') THEN
  RAISE EXCEPTION 'crm_ro cannot read crm.customer on the copy'; END IF; END $$;
CREATE DOMAIN crm.quantity8 AS bigint CHECK (VALUE >= 0);
CREATE DOMAIN crm.quantity4 AS integer;
ALTER TABLE crm.order_line ALTER COLUMN quantity TYPE crm.quantity4;
ALTER TABLE crm.order_line ALTER COLUMN quantity TYPE crm.quantity8;
ALTER TABLE crm.customer ADD COLUMN noted_at timestamptz DEFAULT now();
ALTER TABLE crm.customer ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();
"""})
    add_migration(root, "crm", "crm_0902_index", {"902_index.sql": """\
CREATE INDEX customer_first_name_idx ON crm.customer (first_name);
"""})
    add_migration(root, "crm", "crm_0903_online_index", {"903_online_index.sql": """\
-- transactional: false
CREATE INDEX CONCURRENTLY customer_last_name_idx ON crm.customer (last_name);
"""}, transactional=False)
    add_migration(root, "crm", "crm_0904_check", {"904_check.sql": """\
ALTER TABLE crm.product ADD CONSTRAINT product_label_not_blank CHECK (product_label <> '') NOT VALID;
UPDATE crm.product SET product_label = product_label || '';
SELECT pg_sleep(0.3);
"""})
    add_migration(root, "crm", "crm_0905_validate", {"905_validate.sql": """\
ALTER TABLE crm.product VALIDATE CONSTRAINT product_label_not_blank;
"""})
    out = trace(root, db_url, "--pending", "--module", "crm", "--rows", "200", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["format"] == "dbtool.trace/1" and doc["failed"] is None
    assert [m["id"] for m in doc["migrations"]] == ["crm_0901_types", "crm_0902_index", "crm_0903_online_index",
                                                    "crm_0904_check", "crm_0905_validate"]
    name = doc["copy"]["name"]
    assert name.startswith("dbtool_trace_") and f"trace: scratch copy {name}" in out.stderr

    # Every table of every module filled, every generated row within its constraints.
    assert doc["copy"]["filled"] and set(doc["copy"]["filled"].values()) == {200}, doc["copy"]
    assert doc["copy"]["notes"] == []

    # A type change to a domain over another type rewrites the table and its indexes; over the same type, not.
    same, other = statement(doc, "crm_0901_types", 6), statement(doc, "crm_0901_types", 7)
    assert rewritten(same) == set() and ("AccessExclusiveLock", "crm.order_line") in locks(same)
    assert {"crm.order_line", "crm.order_line_pkey"} <= rewritten(other)
    # A volatile default rewrites; a stable one does not.
    assert rewritten(statement(doc, "crm_0901_types", 8)) == set()
    assert "crm.customer" in rewritten(statement(doc, "crm_0901_types", 9))
    assert statement(doc, "crm_0901_types", 4)["constraints"] == [
        {"name": "quantity8_check", "on": "crm.quantity8", "type": "CHECK", "change": "added", "validated": True}]

    # CREATE INDEX: SHARE on the table, read in its own transaction.
    index = statement(doc, "crm_0902_index", 1)
    assert ("ShareLock", "crm.customer") in locks(index) and index["locks_observed"] == "transaction"
    assert {r["relation"] for r in index["created"]} == {"crm.customer_first_name_idx"}
    # CONCURRENTLY, outside any transaction: SHARE UPDATE EXCLUSIVE, seen from a second session.
    online = statement(doc, "crm_0903_online_index", 2)
    assert ("ShareUpdateExclusiveLock", "crm.customer") in locks(online) and online["locks_observed"] == "sampled"
    assert ("ShareLock", "crm.customer") not in locks(online)
    assert not next(m for m in doc["migrations"] if m["id"] == "crm_0903_online_index")["access_exclusive"]

    # NOT VALID, then VALIDATE; ACCESS EXCLUSIVE held from the ALTER TABLE across the later statements to commit.
    added = statement(doc, "crm_0904_check", 1)
    assert added["constraints"] == [{"name": "product_label_not_blank", "on": "crm.product", "type": "CHECK",
                                     "change": "added", "validated": False}]
    assert ("AccessExclusiveLock", "crm.product") in locks(added)
    update = statement(doc, "crm_0904_check", 2)
    assert ("RowExclusiveLock", "crm.product") in locks(update)
    assert ("AccessExclusiveLock", "crm.product") not in locks(update)  # counted once: for the statement that took it
    check = next(m for m in doc["migrations"] if m["id"] == "crm_0904_check")
    hold = next(h for h in check["access_exclusive"] if h["relation"] == "crm.product")
    assert hold["from"] == "sql/crm/904_check.sql:1" and hold["statements"] == 3 and not hold["created_here"]
    assert 0.3 <= hold["seconds"] <= check["seconds"] + 1e-6
    validated = statement(doc, "crm_0905_validate", 1)
    assert validated["constraints"][0]["change"] == "validated" and validated["constraints"][0]["validated"]
    assert ("ShareUpdateExclusiveLock", "crm.product") in locks(validated)
    assert ("AccessExclusiveLock", "crm.product") not in locks(validated)

    # The copy is gone, and the target unchanged: still pending, no new column.
    assert scratch_databases(db_url) == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'crm.customer'::regclass "
                            "AND attname = 'seen_at'").fetchone()[0] == 0
    status = run_dbtool("status", "--module", "crm", "--format", "json", "--database-url", db_url,
                        env={"DBTOOL_ROOT": str(root)})
    assert sum(1 for m in json.loads(status.stdout)["migrations"] if m["pending"]) == 5


def test_every_migration_on_an_empty_database_python_and_sql_steps_included(root, empty_url):
    """The copy of an empty database gets every migration: files, SQL string steps and Python steps (planning_0003
    checks the existing tables, then rewrites dbtool's bookkeeping, which ApplyFiles creates first)."""
    out = trace(root, empty_url, "--pending", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["migrations"]) == len(migrate_lib.load(modules())) and doc["failed"] is None
    planning = next(m for m in doc["migrations"] if m["id"] == "planning_0003_weekly_actuals")
    assert any(s["sql"].startswith("(Python) check_existing_tables") for s in planning["statements"])
    assert any(s["sql"].startswith("DELETE FROM dbtool.applied_file") for s in planning["statements"])
    assert scratch_databases(empty_url) == []


def test_a_batch_file_runs_batch_by_batch_each_in_its_own_transaction(root, db_url):
    if not hasattr(migration_steps, "BATCH_SETTING"):
        pytest.skip("this checkout's migrate has no `-- batch:` files")
    add_migration(root, "crm", "crm_0901_backfill", {"901_backfill.sql": """\
-- batch: 70
UPDATE crm.customer SET first_name = 'x' WHERE customer_code IN (
  SELECT customer_code FROM crm.customer WHERE first_name IS DISTINCT FROM 'x'
  LIMIT nullif(current_setting('dbtool.batch_rows', true), '')::integer);
"""}, transactional=False)
    out = trace(root, db_url, "--pending", "--rows", "200", "--format", "json")
    assert out.returncode == 0, out.stderr
    s = statement(json.loads(out.stdout), "crm_0901_backfill", 2)
    assert s["batches"]["size"] == 70 and s["batches"]["count"] == 3 and s["batches"]["rows"] == 200
    assert ("RowExclusiveLock", "crm.customer") in locks(s) and s["locks_observed"] == "transaction"


def test_text_output_has_a_table_per_migration(root, db_url):
    add_migration(root, "crm", "crm_0901_segment", {"901_segment.sql": """\
ALTER TABLE crm.customer ADD COLUMN segment text;
UPDATE crm.customer SET segment = 'none';
"""})
    out = trace(root, db_url, "--pending")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("crm_0901_segment (one transaction; 2 statement(s)")
    assert lines[1].split()[:3] == ["statement", "seconds", "locks"]
    assert lines[2].startswith("  sql/crm/901_segment.sql:1") and "AccessExclusiveLock crm.customer" in lines[2]
    assert any(ln.startswith("  ACCESS EXCLUSIVE on crm.customer held ") and
               "from sql/crm/901_segment.sql:1 to commit, across 2 statement(s)" in ln for ln in lines)
    assert lines[-1].startswith("trace: 2 statement(s) of 1 migration(s) on scratch copy dbtool_trace_")


def test_a_failing_statement_is_one_line_naming_file_and_line(root, db_url, tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE INDEX bad_idx ON crm.customer (email);\n-- then\nALTER TABLE crm.customer\n"
                   "  ADD COLUMN x integer REFERENCES crm.no_such_table (id);\n")
    out = trace(root, db_url, str(bad), "--format", "json")
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("dbtool:")]
    assert errors == [f"dbtool: {bad}:3: relation \"crm.no_such_table\" does not exist (on the scratch copy; the "
                      "target is unchanged)"]
    doc = json.loads(out.stdout)
    assert doc["failed"]["line"] == 3 and [s["line"] for s in doc["migrations"][0]["statements"]] == [1]
    assert scratch_databases(db_url) == []


def test_nothing_pending_makes_no_copy(root, db_url):
    out = trace(root, db_url, "--pending")
    assert out.returncode == 0, out.stderr
    assert "trace: 0 pending migration(s)" in out.stderr and "scratch copy" not in out.stderr
    assert out.stdout == "trace: nothing to trace\n"


@pytest.mark.parametrize("args, message", [
    ((), "nothing to trace"),
    (("--pending", "sql/crm"), "not both"),
    (("sql/crm/040_product.sql", "--module", "crm"), "--module applies to --pending only"),
    (("--pending", "--module", "nope"), "unknown module nope"),
    (("--pending", "--rows", "-1"), "-1"),
])
def test_usage_errors_exit_2(root, db_url, args, message):
    out = trace(root, db_url, *args)
    assert out.returncode == 2 and message in out.stderr


def test_cannot_connect_exits_3(root, tmp_path):
    out = trace(root, f"postgresql://nobody@/db?host={tmp_path}&port=1", "--pending")
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 2  # database: ..., then the one error


def test_a_role_without_createdb_is_refused_in_one_line(root, db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS trace_no_createdb")
        conn.execute("CREATE ROLE trace_no_createdb LOGIN NOCREATEDB")
    (tmp_path / "one.sql").write_text("SELECT 1;\n")
    try:
        out = trace(root, db_url.replace("postgresql://postgres@", "postgresql://trace_no_createdb@"),
                    str(tmp_path / "one.sql"))
        assert out.returncode == 3, out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("dbtool: the server refused this role: permission "
                                                              "denied to create database (trace makes its scratch")
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP ROLE trace_no_createdb")


def test_a_killed_trace_leaves_a_database_the_next_run_drops(root, db_url, tmp_path):
    slow = tmp_path / "slow.sql"
    slow.write_text("SELECT pg_sleep(60);\n")
    proc = start_dbtool("trace", "--database-url", db_url, str(slow), env={"DBTOOL_ROOT": str(root)})
    try:
        deadline = time.monotonic() + 60
        while not (left := scratch_databases(db_url)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(left) == 1
        with psycopg.connect(db_url, autocommit=True) as conn:  # the copy is made: the statement is running
            while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query LIKE %s",
                                   (left[0], "SELECT pg_sleep%")).fetchone() and time.monotonic() < deadline:
                time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        finish_dbtool(proc)
    assert scratch_databases(db_url) == left  # killed: nobody dropped it

    quick = tmp_path / "quick.sql"
    quick.write_text("SELECT 1;\n")
    out = trace(root, db_url, str(quick))
    assert out.returncode == 0, out.stderr
    assert f"dropped the scratch database {left[0]}, left by a run that is gone" in out.stderr
    assert scratch_databases(db_url) == []


def test_an_interrupted_trace_drops_its_copy(root, db_url, tmp_path):
    slow = tmp_path / "slow.sql"
    slow.write_text("SELECT pg_sleep(60);\n")
    proc = start_dbtool("trace", "--database-url", db_url, str(slow), env={"DBTOOL_ROOT": str(root)})
    try:
        deadline = time.monotonic() + 60
        while not scratch_databases(db_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
    finally:
        done = finish_dbtool(proc, timeout=30)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert scratch_databases(db_url) == []


def test_migrate_dry_run_mentions_trace(root, db_url):
    add_migration(root, "crm", "crm_0901_note", {"901_note.sql": "COMMENT ON TABLE crm.customer IS 'x';\n"})
    out = run_dbtool("migrate", "--dry-run", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 0, out.stderr
    assert "dbtool trace --pending" in out.stderr
