"""`dbtool backup` / `dbtool restore`: pg_dump -Fc round trip, refusal of a non-empty target, --force."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import psycopg

from dbtool import backup as backup_lib
from dbtool import seed as seed_lib
from dbtool.catalog.expected import load_snapshot
from dbtool.config import Target
from dbtool.paths import VAR_DIR, modules
from helpers import catalog_of, row_counts, run_dbtool

USER_TABLES = """
    SELECT schemaname, tablename FROM pg_tables
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"""


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return row_counts(conn, conn.execute(USER_TABLES).fetchall())


def seeded(conn: psycopg.Connection) -> None:
    for module in modules():
        seed_lib.apply(conn, module)


def test_backup_then_restore_into_a_fresh_database_validates_with_the_same_rows(postgresql, db_url, empty_url,
                                                                                tmp_path):
    seeded(postgresql)
    before = counts(db_url)
    assert {t for m in modules() for t in load_snapshot(m).objects("table")} <= set(before)
    assert sum(before.values()) > 0
    archive = tmp_path / "db.dump"

    done = run_dbtool("backup", "--database-url", db_url, "--out", str(archive))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(archive) and archive.stat().st_size > 0
    assert not list(tmp_path.glob("*.partial"))

    done = run_dbtool("restore", str(archive), "--database-url", empty_url)
    assert done.returncode == 0, done.stderr
    assert counts(empty_url) == before
    # Migration history came along: nothing pending on the restored database.
    status = run_dbtool("status", "--exit-code", "--database-url", empty_url)
    assert status.returncode == 0, status.stdout + status.stderr
    checked = run_dbtool("validate", "--database-url", empty_url)
    assert checked.returncode == 0, checked.stdout


def test_restore_refuses_a_non_empty_database_and_changes_nothing(postgresql, db_url, empty_url, tmp_path):
    archive = tmp_path / "empty.dump"
    assert run_dbtool("backup", "--database-url", empty_url, "--out", str(archive)).returncode == 0
    seeded(postgresql)
    before = (counts(db_url), catalog_of(db_url, modules()))

    done = run_dbtool("restore", str(archive), "--database-url", db_url)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: ") and "is not empty" in last and "--force" in last
    assert "Traceback" not in done.stderr
    assert (counts(db_url), catalog_of(db_url, modules())) == before


def test_restore_force_replaces_what_the_backup_holds(postgresql, db_url, tmp_path):
    seeded(postgresql)
    before = counts(db_url)
    archive = tmp_path / "db.dump"
    assert run_dbtool("backup", "--database-url", db_url, "--out", str(archive)).returncode == 0
    postgresql.execute("DELETE FROM crm.reco_item")
    postgresql.execute("CREATE TABLE public.scratch_note (x int)")  # not in the backup: --clean keeps it
    postgresql.commit()
    assert counts(db_url) != before

    done = run_dbtool("restore", str(archive), "--force", "--database-url", db_url)
    assert done.returncode == 0, done.stderr
    after = counts(db_url)
    assert after.pop("public.scratch_note") == 0
    assert after == before
    checked = run_dbtool("validate", "--database-url", db_url)
    assert checked.returncode == 0, checked.stdout


def test_restore_of_a_file_that_is_not_an_archive_is_a_usage_error(empty_url, tmp_path):
    bogus = tmp_path / "bogus.dump"
    bogus.write_text("SELECT 1;\n")
    done = run_dbtool("restore", str(bogus), "--database-url", empty_url)
    assert done.returncode == 2 and "not a pg_dump custom-format archive" in done.stderr
    assert "does not appear to be a valid archive" in done.stderr   # pg_restore's own words
    done = run_dbtool("restore", str(tmp_path / "missing.dump"), "--database-url", empty_url)
    assert done.returncode == 2 and "no backup file" in done.stderr


def test_restore_of_an_archive_from_a_newer_pg_dump_fails_with_pg_restores_reason(empty_url, tmp_path):
    archive = tmp_path / "db.dump"
    assert run_dbtool("backup", "--database-url", empty_url, "--out", str(archive)).returncode == 0
    data = bytearray(archive.read_bytes())
    assert data[:5] == b"PGDMP"
    data[6] = 99                       # header: magic, then major, minor, revision of the archive format
    archive.write_bytes(bytes(data))
    done = run_dbtool("restore", str(archive), "--database-url", empty_url)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "unsupported version" in last and "not a pg_dump" not in last and "Traceback" not in done.stderr


def test_password_travels_in_the_environment_not_on_the_command_line():
    target = Target("postgresql://app:s3cret-pw@db.example:6543/prod?sslmode=require", "--database-url")
    args, env = backup_lib._libpq_args(target, "prod")
    assert env["PGPASSWORD"] == "s3cret-pw"
    assert len(args) == 1 and args[0].startswith("--dbname=") and "s3cret-pw" not in args[0]
    assert "host=db.example" in args[0] and "port=6543" in args[0] and "sslmode=require" in args[0]


def test_default_backup_file_is_named_after_the_database_and_utc_time():
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert backup_lib.default_path("shop", now=when) == VAR_DIR / "backups" / "shop-20250102T030405Z.dump"


def test_tools_match_the_server_major_version(postgresql):
    major = postgresql.info.server_version // 10000
    path = backup_lib.tool("pg_dump", server_major=major)
    assert backup_lib._major(Path(path)) >= major
