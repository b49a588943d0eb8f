"""Issue 13, items 1, 4 and 13: migrate --to, rollback --to, migrate --redo, reset --recreate.

Migration ids and counts come from migrations/ on disk (others add migrations), never from a list here.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from dbtool.paths import ROOT, modules
from dbtool.revisions import in_order
from helpers import add_migration, catalog_of, copy_project, dbtool_env, finish_dbtool, run_dbtool


def ids_of(module: str) -> list[str]:
    """The module's migration ids in apply order, read from disk."""
    return [m.id for m in in_order(migrate_lib.load([module]))]


def applied(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0] is None:
            return set()
        return {r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()}


def one(url: str, query: str, params=None):
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def refused(out, code: int = 2) -> str:
    """The one line of a refusal: exit `code`, no traceback."""
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: "), out.stderr
    return last


def dbtool(url: str, *args: str, root=None, input: str | None = None):
    env = {"DBTOOL_ROOT": str(root)} if root else None
    return run_dbtool(*args, "--database-url", url, env=env, input=input)


def ok(out) -> str:
    assert out.returncode == 0, out.stderr
    return out.stderr


def all_ids() -> set[str]:
    return {m.id for m in migrate_lib.load(modules())}


def run_on_a_terminal(*args: str, typed: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI with a pseudo-terminal as stdin (so it asks), `typed` as the answer."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "dbtool", *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=dbtool_env(env), cwd=ROOT)
        os.close(slave)
        slave = -1
        os.write(master, typed.encode() + b"\n")
        return finish_dbtool(proc, timeout=120)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


def add_dependent(root, module: str, mid: str, depends: set[str], files: dict[str, str], rollback: str) -> None:
    """A migration of `module` depending on `depends` (any module), applying `files`."""
    for name, text in files.items():
        (root / "sql" / module / name).write_text(text)
    names = ", ".join(repr(n) for n in files)
    (root / "migrations" / module / f"{mid}.py").write_text(
        "from yoyo import step\nfrom dbtool.migration_steps import apply_files, rollback_sql\n"
        f"__depends__ = {sorted(depends)!r}\n"
        f"step(apply_files(__file__, {names}), rollback_sql(__file__, {rollback!r}))\n")


# -- migrate --to ---------------------------------------------------------------------------------

def test_migrate_to_applies_up_to_and_including_it_then_refuses_it_as_applied(empty_url):
    crm = ids_of("crm")
    assert len(crm) >= 2
    out = dbtool(empty_url, "migrate", "--to", crm[1])
    assert f"migrate --to {crm[1]}: applies {crm[0]}, {crm[1]}" in ok(out)
    assert applied(empty_url) == {crm[0], crm[1]}  # nothing after it, nothing of another module
    assert one(empty_url, "SELECT to_regnamespace('infra')") is None

    again = refused(dbtool(empty_url, "migrate", "--to", crm[1]))
    assert crm[1] in again and "already applied" in again and "nothing was applied" in again
    before = refused(dbtool(empty_url, "migrate", "--to", crm[0]))  # behind the database: rollback --to is the way
    assert f"dbtool rollback --to {crm[0]}" in before and crm[1] in before

    ok(dbtool(empty_url, "migrate", "--to", crm[-1].split("_")[0] + "_" + crm[-1].split("_")[1]))  # crm_NNNN
    assert applied(empty_url) == set(crm)


def test_migrate_to_refuses_unknown_ambiguous_and_other_module_ids_in_one_line(empty_url):
    crm, infra = ids_of("crm"), ids_of("infra")
    unknown = refused(dbtool(empty_url, "migrate", "--to", "crm_9999_nothing"))
    assert "unknown migration 'crm_9999_nothing'" in unknown
    typo = refused(dbtool(empty_url, "migrate", "--to", crm[0] + "x"))
    assert f"did you mean {crm[0]}?" in typo
    other = refused(dbtool(empty_url, "migrate", "--module", "crm", "--to", infra[0]))
    assert f"migration {infra[0]} is in module infra, not in crm" in other
    ambiguous = refused(dbtool(empty_url, "migrate", "--to", "crm"))
    assert f"names {len(crm)} migrations" in ambiguous
    assert applied(empty_url) == set()  # nothing was applied


def test_migrate_to_takes_what_it_depends_on_in_other_modules(empty_url, tmp_path):
    root = copy_project(tmp_path)
    crm, infra = ids_of("crm"), ids_of("infra")
    add_dependent(root, "infra", "infra_0099_uses_crm", {infra[-1], crm[0]},
                  {"990_uses_crm.sql": "CREATE TABLE IF NOT EXISTS infra.uses_crm (id int PRIMARY KEY);\n"},
                  "DROP TABLE infra.uses_crm")
    dry = dbtool(empty_url, "migrate", "--to", "infra_0099_uses_crm", "--dry-run", root=root)
    assert "CREATE TABLE IF NOT EXISTS infra.uses_crm" in dry.stdout
    assert applied(empty_url) == set()  # a dry run changes nothing
    out = ok(dbtool(empty_url, "migrate", "--to", "infra_0099_uses_crm", root=root))
    assert applied(empty_url) == {*infra, "infra_0099_uses_crm", crm[0]}
    assert out.index(f"applied {crm[0]}") < out.index("applied infra_0099_uses_crm")  # dependencies first
    assert one(empty_url, "SELECT to_regnamespace('planning')") is None


# -- rollback --to --------------------------------------------------------------------------------

def test_rollback_to_leaves_what_migrate_to_builds(db_url, empty_url):
    crm = ids_of("crm")
    out = ok(dbtool(db_url, "rollback", "--to", crm[0], "--yes"))
    later = list(reversed(crm[1:]))
    assert f"rolls back, newest first: {', '.join(later)} ({crm[0]} stays applied)" in out
    assert out.index("rolls back, newest first") < out.index(f"rolled back {later[0]}")  # listed before done
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("rolled back ")] == later
    assert applied(db_url) == all_ids() - set(crm[1:])  # other modules untouched
    ok(dbtool(empty_url, "migrate", "--to", crm[0]))
    assert catalog_of(db_url, ["crm"]) == catalog_of(empty_url, ["crm"])

    nothing = ok(dbtool(db_url, "rollback", "--to", crm[0]))
    assert f"nothing to roll back: nothing is applied after {crm[0]}" in nothing
    pending = refused(dbtool(db_url, "rollback", "--to", crm[-1]))
    assert crm[-1] in pending and "not applied" in pending
    assert "--to and --all" in refused(dbtool(db_url, "rollback", "--to", crm[0], "--all"))
    assert "unknown migration 'nope'" in refused(dbtool(db_url, "rollback", "--to", "nope"))
    assert applied(db_url) == all_ids() - set(crm[1:])
    ok(dbtool(db_url, "migrate"))
    assert applied(db_url) == all_ids()


def test_rollback_to_dry_run_lists_and_changes_nothing(db_url):
    crm = ids_of("crm")
    before = catalog_of(db_url, ["crm"])
    out = ok(dbtool(db_url, "rollback", "--to", crm[0], "--dry-run"))
    assert f"would roll back, newest first: {', '.join(reversed(crm[1:]))}" in out
    assert f"dry run: {len(crm) - 1} migration(s) would be rolled back; nothing was changed" in out
    assert applied(db_url) == all_ids()
    assert catalog_of(db_url, ["crm"]) == before


def test_rollback_to_takes_dependents_of_other_modules_first_and_asks(db_url, tmp_path):
    root = copy_project(tmp_path)
    crm, infra = ids_of("crm"), ids_of("infra")
    add_dependent(root, "infra", "infra_0099_uses_crm", {infra[-1], crm[1]},
                  {"990_uses_crm.sql": "CREATE TABLE IF NOT EXISTS infra.uses_crm (id int PRIMARY KEY);\n"},
                  "DROP TABLE infra.uses_crm")
    ok(dbtool(db_url, "migrate", root=root))
    line = refused(dbtool(db_url, "rollback", "--to", crm[0], root=root))  # no terminal, no --yes
    assert "drops 1 table(s)" in line and "rolls back migrations of 2 modules" in line and "use --yes" in line
    assert "infra_0099_uses_crm" in applied(db_url)

    out = ok(dbtool(db_url, "rollback", "--to", crm[0], "--yes", root=root))
    done = [line.split()[-1] for line in out.splitlines() if line.startswith("rolled back ")]
    assert set(done) == {"infra_0099_uses_crm", *crm[1:]}
    assert done.index("infra_0099_uses_crm") < done.index(crm[1])  # a dependent before what it depends on
    assert applied(db_url) == (all_ids() - set(crm[1:])) | {crm[0]}  # infra's own migrations stay
    assert one(db_url, "SELECT to_regclass('infra.uses_crm')") is None


def test_rollback_to_refuses_when_a_later_migration_is_missing_from_disk(db_url, tmp_path):
    root = copy_project(tmp_path)
    crm = ids_of("crm")
    add_migration(root, "crm", "crm_0099_gone", {"990_gone.sql": "CREATE TABLE IF NOT EXISTS crm.gone (id int);\n"},
                  rollback="DROP TABLE crm.gone")
    ok(dbtool(db_url, "migrate", root=root))
    (root / "migrations" / "crm" / "crm_0099_gone.py").unlink()
    line = refused(dbtool(db_url, "rollback", "--to", crm[0], "--yes", root=root), code=1)
    assert "crm_0099_gone" in line and "not on disk" in line and "nothing was rolled back" in line
    assert applied(db_url) == all_ids() | {"crm_0099_gone"}


def test_rollback_to_refuses_to_drop_outside_objects_without_cascade(db_url, tmp_path):
    root = copy_project(tmp_path)
    crm = ids_of("crm")
    add_migration(root, "crm", "crm_0099_points", {"990_points.sql": "CREATE TABLE crm.points (id int);\n"},
                  rollback="DROP TABLE crm.points CASCADE")
    ok(dbtool(db_url, "migrate", root=root))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.point_ids AS SELECT id FROM crm.points")
    line = refused(dbtool(db_url, "rollback", "--to", crm[-1], "--yes", root=root))
    assert "view public.point_ids" in line and "add --cascade" in line and "nothing was dropped" in line
    assert "crm_0099_points" in applied(db_url)
    dry = ok(dbtool(db_url, "rollback", "--to", crm[-1], "--dry-run", root=root))
    assert "also drops, outside the module: view public.point_ids" in dry and "refused without --cascade" in dry
    ok(dbtool(db_url, "rollback", "--to", crm[-1], "--yes", "--cascade", root=root))
    assert one(db_url, "SELECT to_regclass('public.point_ids')") is None
    assert applied(db_url) == all_ids()


# -- migrate --redo -------------------------------------------------------------------------------

LOYALTY = "CREATE TABLE IF NOT EXISTS crm.loyalty (id int PRIMARY KEY, points int NOT NULL);\n"


@pytest.fixture
def loyalty(db_url, tmp_path):
    """A project copy with an unreleased crm migration applied to this database, holding one row."""
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0099_loyalty", {"990_loyalty.sql": LOYALTY}, rollback="DROP TABLE crm.loyalty")
    ok(dbtool(db_url, "migrate", root=root))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO crm.loyalty VALUES (1, 10)")
    return root


def columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                                           "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,))]


def changed_files(url: str, root, mid: str) -> list[str]:
    out = run_dbtool("status", "--format", "json", "--database-url", url, env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 0, out.stderr
    return next(m["changed_files"] for m in json.loads(out.stdout)["migrations"] if m["id"] == mid)


def test_redo_applies_the_edited_file_again_after_asking(db_url, loyalty):
    (loyalty / "sql" / "crm" / "990_loyalty.sql").write_text(LOYALTY.replace("NOT NULL", "NOT NULL, tier text"))
    assert changed_files(db_url, loyalty, "crm_0099_loyalty") == ["sql/crm/990_loyalty.sql"]

    line = refused(dbtool(db_url, "migrate", "--redo", "crm_0099_loyalty", root=loyalty))  # drops a table: asks
    assert "redo drops 1 table(s) and their rows" in line and "use --yes" in line
    assert columns(db_url, "crm.loyalty") == ["id", "points"]

    out = ok(dbtool(db_url, "migrate", "--redo", "--module", "crm", "--yes", root=loyalty))  # the latest of crm
    assert "migrate --redo crm_0099_loyalty: rolls back crm_0099_loyalty, then applies it again" in out
    assert columns(db_url, "crm.loyalty") == ["id", "points", "tier"]
    assert one(db_url, "SELECT count(*) FROM crm.loyalty") == 0  # the rollback dropped the table and its row
    assert changed_files(db_url, loyalty, "crm_0099_loyalty") == []  # its checksum is the new file's
    assert applied(db_url) == all_ids() | {"crm_0099_loyalty"}


def test_redo_on_a_terminal_names_what_it_drops_and_reapplies(db_url, loyalty):
    wrong = run_on_a_terminal("migrate", "--redo", "crm_0099_loyalty", "--database-url", db_url, typed="no",
                              env={"DBTOOL_ROOT": str(loyalty)})
    assert wrong.returncode == 2, wrong.stderr
    assert "drops 1 table(s) and every row in them: crm.loyalty" in wrong.stderr
    assert "then applies crm_0099_loyalty (from the files as they are now)" in wrong.stderr
    assert wrong.stderr.rstrip().endswith("dbtool: confirmation did not match: nothing was changed")
    assert one(db_url, "SELECT count(*) FROM crm.loyalty") == 1


def test_a_failed_redo_leaves_the_migration_applied_as_it_was(db_url, loyalty):
    (loyalty / "sql" / "crm" / "990_loyalty.sql").write_text(
        LOYALTY.replace("NOT NULL", "NOT NULL REFERENCES crm.no_such_table"))
    line = refused(dbtool(db_url, "migrate", "--redo", "crm_0099_loyalty", "--yes", root=loyalty), code=1)
    assert "sql/crm/990_loyalty.sql:1:" in line and "no_such_table" in line
    assert "crm_0099_loyalty stays applied as it was" in line
    assert one(db_url, "SELECT count(*) FROM crm.loyalty") == 1  # its rollback was undone too
    assert "crm_0099_loyalty" in applied(db_url)


def test_redo_refuses_what_it_cannot_redo_alone(db_url, loyalty):
    crm, infra = ids_of("crm"), ids_of("infra")
    older = refused(dbtool(db_url, "migrate", "--redo", crm[0], "--yes", root=loyalty))
    assert "crm_0099_loyalty is applied after it" in older and f"dbtool rollback --to {crm[0]}" in older
    assert "exactly one --module" in refused(dbtool(db_url, "migrate", "--redo", "--yes", root=loyalty))
    assert "is in module infra" in refused(dbtool(db_url, "migrate", "--redo", infra[0], "-m", "crm", root=loyalty))
    assert "does not combine" in refused(dbtool(db_url, "migrate", "--redo", "crm_0099_loyalty", "--dry-run"))
    assert "applies to --redo only" in refused(dbtool(db_url, "migrate", "--yes"))

    add_dependent(loyalty, "infra", "infra_0099_uses_loyalty", {infra[-1], "crm_0099_loyalty"},
                  {"990_uses_loyalty.sql": "COMMENT ON SCHEMA infra IS 'uses loyalty';\n"},
                  "COMMENT ON SCHEMA infra IS NULL")
    ok(dbtool(db_url, "migrate", root=loyalty))
    needed = refused(dbtool(db_url, "migrate", "--redo", "crm_0099_loyalty", "--yes", root=loyalty))
    assert "infra_0099_uses_loyalty depends on it" in needed
    ok(dbtool(db_url, "rollback", "--to", infra[-1], root=loyalty))  # --module infra cannot load it alone
    assert "is not applied" in refused(dbtool(db_url, "migrate", "--redo", "infra_0099_uses_loyalty", root=loyalty))
    assert one(db_url, "SELECT count(*) FROM crm.loyalty") == 1  # none of these changed anything


# -- reset --recreate -----------------------------------------------------------------------------

def test_reset_recreate_drops_the_module_and_migrates_it_again(db_url, empty_url):
    planning = ids_of("planning")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE planning.scratch (id int)")
    line = refused(dbtool(db_url, "reset", "--module", "planning", "--recreate"))  # no terminal, no --yes
    assert "drops schema planning and all its data, then migrates it again" in line
    assert one(db_url, "SELECT to_regclass('planning.scratch')") is not None

    out = ok(dbtool(db_url, "reset", "--module", "planning", "--recreate", "--yes"))
    assert out.index("schema dropped") < out.index(f"applied {planning[0]}")
    assert f"reset planning: {len(planning)} migration(s) applied again" in out
    assert one(db_url, "SELECT to_regclass('planning.scratch')") is None
    assert applied(db_url) == all_ids()
    ok(dbtool(empty_url, "migrate", "--module", "planning"))
    assert catalog_of(db_url, ["planning"]) == catalog_of(empty_url, ["planning"])


def test_reset_recreate_on_a_terminal_says_it_migrates_again(db_url):
    planning = ids_of("planning")
    wrong = run_on_a_terminal("reset", "-m", "planning", "--recreate", "--database-url", db_url, typed="nope")
    assert wrong.returncode == 2 and "nothing was dropped" in wrong.stderr
    assert f"then applies {', '.join(planning)}" in wrong.stderr
    assert applied(db_url) == all_ids()
