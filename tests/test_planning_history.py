"""Issue 13, item 5: planning's history follows seed 003.

planning_0001_initial creates the tables the seed treats as existing (the retail systems' own);
planning_0003_weekly_actuals checks them and creates weekly_actuals, the one table the seed's migration adds.
A database migrated with the earlier history (planning_0001_initial applying every file up to 090) carries on
with `dbtool migrate`, and validates clean; rollback of the latest migration drops weekly_actuals only.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from helpers import catalog_of, copy_project, row_counts, run_dbtool

INITIAL, WEEKLY = "planning_0001_initial", "planning_0003_weekly_actuals"
TABLES = """SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace('planning') AND c.relkind = 'r'
            ORDER BY 1"""
ACLS = """SELECT c.relname, c.relkind, c.relacl::text[] FROM pg_class c
          WHERE c.relnamespace = to_regnamespace('planning') ORDER BY 1"""
RECORDS = """SELECT migration_id, file, checksum, algorithm FROM dbtool.applied_file WHERE module = 'planning'
             ORDER BY 1, 2"""
OWNERS_OF_090 = "SELECT migration_id FROM dbtool.applied_file WHERE file = 'planning/090_weekly_actuals.sql'"


def planning_migrations():
    return migrate_lib.load(["planning"])


def files_of(mid: str) -> list[str]:
    (m,) = [m for m in planning_migrations() if m.id == mid]
    return [p.name for p in migrate_lib.files_of(m)]


def after(mid: str) -> list[str]:
    """The planning migrations on disk after `mid`, in order (none today; a test must not need editing when
    one is added)."""
    ids = [m.id for m in planning_migrations()]
    return ids[ids.index(mid) + 1:]


def roll_back_after(url: str, mid: str) -> None:
    for later in reversed(after(mid)):
        assert f"rolled back {later}" in ok(run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", url))


def old_history(dest: Path) -> Path:
    """A copy of the project whose planning history is the one before issue 13: planning_0001_initial applied
    every file of the two migrations that now share them, 0003 (and what came after it) did not exist."""
    root = copy_project(dest)
    folder = root / "migrations" / "planning"
    names = ", ".join(repr(n) for n in sorted(files_of(INITIAL) + files_of(WEEKLY)))
    for mid in [WEEKLY, *after(WEEKLY)]:
        (folder / f"{mid}.py").unlink()
    (folder / f"{INITIAL}.py").write_text(
        '"""planning: the initial schema, as it was before issue 13."""\n'
        "from yoyo import step\nfrom dbtool.migration_steps import apply_files, rollback_sql\n"
        "__depends__: set[str] = set()\n"
        f"step(apply_files(__file__, {names}), "
        "rollback_sql(__file__, 'DROP SCHEMA IF EXISTS planning CASCADE'))\n")
    return root


def query(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return row_counts(conn, [("planning", t) for (t,) in conn.execute(TABLES).fetchall()])


def ok(out) -> str:
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def one_line_error(out, code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("dbtool: "), out.stderr
    return line


def status(url: str) -> dict[str, dict]:
    out = run_dbtool("status", "-m", "planning", "--format", "json", "--database-url", url)
    ok(out)
    return {m["id"]: m for m in json.loads(out.stdout)["migrations"]}


def findings(url: str) -> list[tuple[str, str, str]]:
    out = run_dbtool("validate", "-m", "planning", "--format", "json", "--database-url", url)
    report = json.loads(out.stdout)
    assert out.returncode == (0 if report["ok"] else 1), out.stderr
    return [(f["kind"], f["object"], f["problem"]) for f in report["findings"]]


def test_the_history_follows_the_seed():
    ids = [m.id for m in planning_migrations()]
    assert ids[0] == INITIAL and WEEKLY in ids
    assert files_of(WEEKLY) == ["090_weekly_actuals.sql"]
    assert "090_weekly_actuals.sql" not in files_of(INITIAL)


def test_a_database_migrated_with_the_old_history_carries_on_and_validates_clean(empty_url, db_url, tmp_path):
    old = old_history(tmp_path)
    ok(run_dbtool("migrate", "--database-url", empty_url, env={"DBTOOL_ROOT": str(old)}))
    ok(run_dbtool("seed", "-m", "planning", "--database-url", empty_url))
    assert query(empty_url, OWNERS_OF_090) == [(INITIAL,)]
    data = counts(empty_url)
    assert data["planning.weekly_actuals"] > 0 and data["planning.stores"] > 0

    # The new files, before migrating: the old checksum records match them (nothing "changed since applied").
    before = status(empty_url)
    assert {mid for mid, s in before.items() if s["pending"]} == {WEEKLY, *after(WEEKLY)}
    assert all(s["changed_files"] == [] for s in before.values()), before
    assert findings(empty_url) == [("migration", mid, "pending") for mid in sorted([WEEKLY, *after(WEEKLY)])]

    out = run_dbtool("migrate", "--database-url", empty_url)
    assert f"applied {WEEKLY}" in ok(out), out.stderr
    assert f"{1 + len(after(WEEKLY))} migration(s) applied" in out.stderr, out.stderr

    assert findings(empty_url) == []
    now = status(empty_url)
    assert not any(s["pending"] or s["changed_files"] for s in now.values()), now
    assert counts(empty_url) == data                                     # no row lost, none added
    # The same catalog (privileges included: weekly_actuals was created before the privileges file there,
    # after it on a database migrated since), and the same checksum records.
    assert query(empty_url, ACLS) == query(db_url, ACLS)
    assert catalog_of(empty_url, ["planning"]) == catalog_of(db_url, ["planning"])
    assert query(empty_url, RECORDS) == query(db_url, RECORDS)
    assert query(empty_url, OWNERS_OF_090) == [(WEEKLY,)]
    assert "nothing to apply" in ok(run_dbtool("migrate", "--database-url", empty_url))   # again: nothing to do

    # Its rollback now drops weekly_actuals only, there too.
    roll_back_after(empty_url, WEEKLY)
    data = counts(empty_url)
    assert f"rolled back {WEEKLY}" in ok(run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", empty_url))
    left = counts(empty_url)
    assert "planning.weekly_actuals" not in left
    assert left == {t: n for t, n in data.items() if t != "planning.weekly_actuals"}
    assert query(empty_url, OWNERS_OF_090) == []


def test_rollback_of_the_latest_planning_migration_drops_weekly_actuals_only(db_url):
    roll_back_after(db_url, WEEKLY)
    ok(run_dbtool("seed", "-m", "planning", "--database-url", db_url))
    data = counts(db_url)
    assert all(n > 0 for n in data.values()), data

    asked = one_line_error(run_dbtool("rollback", "-m", "planning", "--database-url", db_url), 2)
    assert "drops 1 table(s) and their rows" in asked and "use --yes" in asked
    assert counts(db_url) == data

    assert f"rolled back {WEEKLY}" in ok(run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url))
    assert counts(db_url) == {t: n for t, n in data.items() if t != "planning.weekly_actuals"}
    assert status(db_url)[WEEKLY]["pending"]
    assert set(findings(db_url)) == {("table", "planning.weekly_actuals", "missing"),
                                     ("sequence", "planning.weekly_actuals_id_seq", "missing"),
                                     ("migration", WEEKLY, "pending")}

    ok(run_dbtool("migrate", "-m", "planning", "--database-url", db_url))   # and back
    assert findings(db_url) == []


def test_rollback_of_the_initial_migration_refuses_while_the_retail_tables_hold_rows(db_url):
    ok(run_dbtool("seed", "-m", "planning", "--database-url", db_url))
    data = counts(db_url)
    held = sorted(t for t, n in data.items() if n and t != "planning.weekly_actuals")
    out = run_dbtool("rollback", "-m", "planning", "--all", "--yes", "--database-url", db_url)
    line = one_line_error(out, 1)
    assert f"{', '.join(held)} hold rows" in line and "dbtool reset --module planning" in line, line
    assert "nothing was rolled back" in line
    assert counts(db_url) == data
    assert not any(s["pending"] for s in status(db_url).values())

    ok(run_dbtool("seed", "--clear", "-m", "planning", "--database-url", db_url))
    ok(run_dbtool("rollback", "-m", "planning", "--all", "--yes", "--database-url", db_url))
    assert query(db_url, "SELECT to_regnamespace('planning')") == [(None,)]


BROKEN = (
    "ALTER TABLE planning.stores DROP COLUMN region",
    "ALTER TABLE planning.stores ALTER COLUMN store_size_sqft TYPE bigint",
    "ALTER TABLE planning.historical_sales ALTER COLUMN units_sold DROP NOT NULL",
    "ALTER TABLE planning.categories DROP CONSTRAINT categories_pkey CASCADE",
    "DROP TABLE planning.workflows",
)


def test_the_prerequisite_check_names_what_is_missing_or_wrong_and_applies_nothing(db_url):
    roll_back_after(db_url, WEEKLY)
    ok(run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url))   # back before weekly_actuals
    execute(db_url, *BROKEN)
    before = catalog_of(db_url, ["planning"])
    line = one_line_error(run_dbtool("migrate", "-m", "planning", "--database-url", db_url), 1)
    assert line.startswith(f"dbtool: migration {WEEKLY} cannot create planning.weekly_actuals: "), line
    problems = ("planning.historical_sales.units_sold allows NULL, not NOT NULL; "
                "planning.stores.store_size_sqft is bigint, not integer; "
                "planning.stores has no column region (character varying(50) NOT NULL); "
                "planning.categories has no primary key (category_id); "
                "planning.workflows is missing (")
    assert problems in line, line
    assert line.endswith("; nothing was applied")
    assert catalog_of(db_url, ["planning"]) == before
    assert status(db_url)[WEEKLY]["pending"]


@pytest.mark.parametrize("statements, problem", [
    (("DROP TABLE planning.workflows", "CREATE VIEW planning.workflows AS SELECT 'w'::varchar(50) AS workflow_id"),
     "planning.workflows is not a table"),
    (("ALTER TABLE planning.stores DROP CONSTRAINT stores_pkey CASCADE",
      "ALTER TABLE planning.stores ADD PRIMARY KEY (store_id, store_name)"),
     "planning.stores has primary key (store_id, store_name), not (store_id)"),
])
def test_the_prerequisite_check_names_a_wrong_kind_or_key(db_url, statements, problem):
    roll_back_after(db_url, WEEKLY)
    ok(run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url))
    execute(db_url, *statements)
    line = one_line_error(run_dbtool("migrate", "-m", "planning", "--database-url", db_url), 1)
    assert f"planning.weekly_actuals: {problem} (seed 003" in line, line
