"""Issue 13, item 1: `dbtool history`, yoyo's log with who ran each migration (dbtool.migration_log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from dbtool import migrate as migrate_lib
from dbtool.lock import this_host
from dbtool.paths import modules
from dbtool.revisions import in_order
from helpers import add_migration, copy_project, finish_dbtool, run_dbtool, start_dbtool


def history(url: str, *args: str, root=None) -> list[dict]:
    out = run_dbtool("history", "--format", "json", *args, "--database-url", url,
                     env={"DBTOOL_ROOT": str(root)} if root else None)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["format"] == "dbtool.history/1"
    return doc["entries"]


def ran(*args: str, root=None) -> tuple[subprocess.CompletedProcess, str]:
    """Run the CLI; its result and the host/pid history should name for it."""
    proc = start_dbtool(*args, env={"DBTOOL_ROOT": str(root)} if root else None)
    out = finish_dbtool(proc)
    assert out.returncode == 0, out.stderr
    return out, f"{this_host()}/{proc.pid}"


def latest(module: str) -> str:
    return [m.id for m in in_order(migrate_lib.load([module]))][-1]


def one(url: str, query: str, params=None):
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def test_history_shows_applies_and_rollbacks_newest_first_with_who_ran_them(db_url):
    crm = latest("crm")
    _, rolled_by = ran("rollback", "--module", "crm", "--yes", "--database-url", db_url)
    _, applied_by = ran("migrate", "--module", "crm", "--database-url", db_url)
    entries = history(db_url, "--module", "crm")
    assert [(e["operation"], e["migration_id"], e["by"], e["command"]) for e in entries[:2]] == [
        ("apply", crm, applied_by, "migrate"), ("rollback", crm, rolled_by, "rollback")]
    assert entries[0]["at"] >= entries[1]["at"] and all(e["module"] == "crm" for e in entries)
    assert entries[0]["host"] == this_host() and entries[0]["role"] == "postgres"
    # every migration on disk was applied once when the database was built, by one run
    built = [e for e in entries if e["operation"] == "apply"][1:]
    assert sorted(e["migration_id"] for e in built) == sorted(m.id for m in migrate_lib.load(["crm"]))
    assert len({e["by"] for e in built}) == 1

    assert len(history(db_url, "--limit", "1")) == 1
    others = history(db_url, "--module", "infra")
    assert others and all(e["module"] == "infra" for e in others)
    every = history(db_url)
    assert {e["module"] for e in every} == set(modules())

    text = run_dbtool("history", "--module", "crm", "--limit", "2", "--database-url", db_url)
    assert text.returncode == 0, text.stderr
    first, second = text.stdout.splitlines()
    assert first.split()[3:7] == ["apply", "crm", crm, applied_by]
    assert second.split()[3:7] == ["rollback", "crm", crm, rolled_by]
    assert "(dbtool migrate, role postgres," in first


def test_rows_written_without_dbtool_say_unknown(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0099_by_yoyo", {"990_by_yoyo.sql": "COMMENT ON SCHEMA crm IS 'yoyo';\n"},
                  rollback="COMMENT ON SCHEMA crm IS NULL")
    with psycopg.connect(db_url) as conn:
        info = conn.info
        yoyo_url = f"postgresql+psycopg://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTOOL_")) and k != "DATABASE_URL"}
    yoyo = subprocess.run([os.path.join(os.path.dirname(sys.executable), "yoyo"), "apply", "--batch",
                           "--no-config-file", "--database", yoyo_url, str(root / "migrations" / "crm")],
                          capture_output=True, text=True, env={**env, "DBTOOL_ROOT": str(root)}, timeout=120)
    assert yoyo.returncode == 0, yoyo.stderr
    newest = history(db_url, "--limit", "1", root=root)[0]
    assert (newest["operation"], newest["migration_id"], newest["module"]) == ("apply", "crm_0099_by_yoyo", "crm")
    assert (newest["by"], newest["host"], newest["pid"], newest["command"]) == ("unknown", None, None, None)
    assert newest["username"]  # yoyo's own columns are still shown
    text = run_dbtool("history", "--limit", "1", "--database-url", db_url)
    assert " crm_0099_by_yoyo " in text.stdout and " unknown " in text.stdout + " "


def test_a_failed_migration_leaves_no_log_row_and_each_dbtool_row_has_its_who(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0099_broken", {"990_broken.sql": "CREATE TABLE crm.half (id int);\nSELEC 1;\n"})
    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert one(db_url, "SELECT count(*) FROM _yoyo_log WHERE migration_id = 'crm_0099_broken'") == 0
    assert one(db_url, "SELECT count(*) FROM dbtool.migration_log WHERE migration_id = 'crm_0099_broken'") == 0
    # written together: every log row dbtool wrote has its who, and no who is without its log row
    assert one(db_url, "SELECT count(*) FROM _yoyo_log y FULL JOIN dbtool.migration_log d ON d.yoyo_log_id = y.id "
                       "WHERE y.id IS NULL OR d.yoyo_log_id IS NULL") == 0


def test_history_on_a_database_never_migrated(empty_url):
    out = run_dbtool("history", "--database-url", empty_url)
    assert out.returncode == 0 and out.stdout == ""
    assert "no migration has run on this database" in out.stderr
    assert history(empty_url) == []
    bad = run_dbtool("history", "--limit", "0", "--database-url", empty_url)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_history_is_read_only_and_refuses_an_unreadable_log_in_one_line(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS history_reader")
        conn.execute("CREATE ROLE history_reader LOGIN")
    url = db_url.replace("postgresql://postgres@", "postgresql://history_reader@")
    try:
        entries = history(url, "--limit", "3")  # a role with no privilege of its own: the log is PUBLIC
        assert len(entries) == 3 and all(e["by"] != "unknown" for e in entries)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("REVOKE SELECT ON dbtool.migration_log FROM PUBLIC")
        out = run_dbtool("history", "--database-url", url)
        line = out.stderr.strip().splitlines()[-1]
        assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr
        assert line.startswith("dbtool: the server refused this role: permission denied to read dbtool.migration_log")
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY history_reader")
            conn.execute("DROP ROLE history_reader")


def test_history_waits_only_so_long_behind_a_lock_on_the_log_and_names_the_holder(db_url):
    with psycopg.connect(db_url) as holder:
        holder.execute("LOCK TABLE _yoyo_log IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        out = run_dbtool("history", "--database-url", db_url, env={"DBTOOL_READ_LOCK_TIMEOUT": "0.5"})
        holder.rollback()
    line = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert line.startswith("dbtool: history gave up after 0.5s waiting for a table lock") and f"pid {pid}" in line


def test_a_database_migrated_by_an_older_dbtool_shows_unknown_until_dbtool_records_who(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE dbtool.migration_log")  # as an older dbtool left it
    before = history(db_url)
    assert before and {e["by"] for e in before} == {"unknown"}
    _, by = ran("reset", "--module", "planning", "--recreate", "--yes", "--database-url", db_url)
    planning = [m.id for m in in_order(migrate_lib.load(["planning"]))]
    entries = history(db_url, "--module", "planning")
    recorded = entries[:2 * len(planning)]  # reset's: each record forgotten, then applied again
    assert [e["operation"] for e in recorded] == ["apply"] * len(planning) + ["unmark"] * len(planning)
    assert {(e["by"], e["command"]) for e in recorded} == {(by, "reset")}
    assert sorted(e["migration_id"] for e in recorded[:len(planning)]) == sorted(planning)
    assert {e["by"] for e in entries[2 * len(planning):]} == {"unknown"}
