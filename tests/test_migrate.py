"""Issue 2: migrate builds every table of the specs; psql -f builds the same catalog;
rollback removes what it created; a failing migration leaves nothing behind."""

from __future__ import annotations

import re
import subprocess

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from dbtool.catalog.expected import load_snapshot
from dbtool.migration_steps import lex
from dbtool.paths import ROOT, SQL_DIR, module_sql_files, modules
from dbtool.psql_entry import entry_path, psql_options, render
from helpers import SPEC_TABLES, add_migration, catalog_of, copy_project, run_dbtool

CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)", re.I)


def tables(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(%s)",
            (modules(),)).fetchall()
    out: dict[str, set[str]] = {m: set() for m in modules()}
    for schema, name in rows:
        out[schema].add(name)
    return out


def sql_tables() -> dict[str, set[str]]:
    """The tables sql/ describes, per module: the committed snapshot (a test keeps it current). Derived, so
    a table added as the README says needs no edit here; the specs' tables are checked to be among them."""
    return {m: {t.name for t in load_snapshot(m).tables()} for m in modules()}


def created_by(migrations) -> dict[str, set[str]]:
    """The tables the files of these migrations create, per module (read from the files themselves)."""
    out: dict[str, set[str]] = {m: set() for m in modules()}
    for path in (p for m in migrations for p in migrate_lib.files_of(m)):
        text = path.read_text(encoding="utf-8")
        code = "".join(" " if kind == "comment" else text[s:e] for kind, s, e in lex(text))  # no commented example
        for schema, name in CREATE_TABLE.findall(code):
            out[schema].add(name)
    return out


def test_sql_has_every_table_of_the_specs():
    got = sql_tables()
    assert {m: SPEC_TABLES[m] - got[m] for m in SPEC_TABLES} == {m: set() for m in SPEC_TABLES}
    assert created_by(migrate_lib.load(modules())) == got


def test_modules_are_the_four_specs():
    assert modules() == sorted(SPEC_TABLES)


def test_migrate_creates_every_spec_table_and_second_run_is_a_noop(empty_url):
    first = run_dbtool("migrate", "--database-url", empty_url)
    assert first.returncode == 0, first.stderr
    assert tables(empty_url) == sql_tables()
    before = catalog_of(empty_url, modules())

    second = run_dbtool("migrate", "--database-url", empty_url)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stderr
    assert catalog_of(empty_url, modules()) == before


def test_migrate_one_module_only(empty_url):
    out = run_dbtool("migrate", "--module", "planning", "--database-url", empty_url)
    assert out.returncode == 0, out.stderr
    got = tables(empty_url)
    assert got["planning"] == sql_tables()["planning"]
    assert got["crm"] == got["infra"] == got["chatbot"] == set()


def psql(url: str, module: str) -> subprocess.CompletedProcess:
    """Apply sql/<module>.psql as its header says (-1 unless a file must run outside a transaction)."""
    return subprocess.run(["psql", "-q", *psql_options(module), "-f", str(entry_path(module)), url],
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("module", sorted(SPEC_TABLES))
def test_psql_f_twice_builds_the_catalog_yoyo_builds(module, empty_url, db_url):
    for _ in range(2):
        out = psql(empty_url, module)
        assert out.returncode == 0, out.stderr
    assert catalog_of(empty_url, [module]) == catalog_of(db_url, [module])


@pytest.mark.parametrize("module", sorted(SPEC_TABLES))
def test_psql_entry_file_is_current(module):
    assert entry_path(module).read_text() == render(module), "run `make snapshot`"


def test_every_sql_file_is_applied_by_exactly_one_migration_in_order():
    """Each file by one migration, in number order within it. Across migrations the order may differ from
    psql's number order only where history demands it (planning_0003_weekly_actuals applies 090 after
    planning_0002's 100, see its docstring); the psql parity tests above prove the catalogs equal."""
    for module in modules():
        migrations = migrate_lib.load([module])
        applied = [p for m in migrations for p in migrate_lib.files_of(m)]
        assert sorted(applied) == module_sql_files(module) and len(set(applied)) == len(applied)
        for m in migrations:
            assert migrate_lib.files_of(m) == sorted(migrate_lib.files_of(m)), m.id


def test_database_built_by_psql_is_adopted_by_migrate_without_baseline(empty_url, db_url):
    for module in modules():
        assert psql(empty_url, module).returncode == 0
    out = run_dbtool("migrate", "--database-url", empty_url)
    assert out.returncode == 0, out.stderr
    assert catalog_of(empty_url, modules()) == catalog_of(db_url, modules())


def test_rollback_all_leaves_no_object_behind(db_url):
    out = run_dbtool("rollback", "--all", "--yes", "--database-url", db_url)  # drops data: asks, unless --yes
    assert out.returncode == 0, out.stderr
    catalog = catalog_of(db_url, modules())
    assert all(not objects for objects in catalog.by_kind.values()), catalog
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dbtool.applied_file").fetchone()[0] == 0


def test_rollback_without_all_undoes_the_latest_migration_of_the_module(db_url):
    migrations = migrate_lib.load(["infra"])
    infra = [m.id for m in migrations]
    assert infra[:2] == ["infra_0001_initial", "infra_0002_privileges"]
    everything = sql_tables()
    for n in range(len(infra), 0, -1):  # one migration per run, newest first; other modules untouched
        out = run_dbtool("rollback", "--module", "infra", "--yes", "--database-url", db_url)
        assert out.returncode == 0, out.stderr
        assert f"rolled back {infra[n - 1]}" in out.stderr
        got = tables(db_url)
        assert got["crm"] == everything["crm"]
        assert got["infra"] == created_by(migrations[:n - 1])["infra"]  # what the migrations still applied made
    assert got["infra"] == set()
    again = run_dbtool("migrate", "--database-url", db_url)
    assert again.returncode == 0 and tables(db_url) == everything


@pytest.fixture
def project_copy(tmp_path):
    return copy_project(tmp_path)


def test_migration_failing_halfway_leaves_the_database_as_it_was(db_url, project_copy):
    broken = ("CREATE TABLE IF NOT EXISTS crm.first_half (id int PRIMARY KEY);\n"
              "ALTER TABLE crm.product ADD COLUMN IF NOT EXISTS half_done int;\n"
              "\n"
              "CREATE INDEX IF NOT EXISTS oops ON crm.product (no_such_column);\n")
    add_migration(project_copy, "crm", "crm_0002_broken", {"140_broken.sql": broken})
    before = catalog_of(db_url, modules())

    out = run_dbtool("migrate", "--database-url", db_url, env={"DBTOOL_ROOT": str(project_copy)})

    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: sql/crm/140_broken.sql:4:"), out.stderr
    assert "no_such_column" in last and "crm_0002_broken" in last
    assert "Traceback" not in out.stderr
    assert catalog_of(db_url, modules()) == before
    status = run_dbtool("status", "--module", "crm", "--database-url", db_url,
                        env={"DBTOOL_ROOT": str(project_copy)})
    assert "crm_0002_broken" in status.stdout and "pending" in status.stdout


def test_applied_files_are_fingerprinted(db_url):
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT file, checksum, algorithm FROM dbtool.applied_file").fetchall()
    expected = {str(p.relative_to(SQL_DIR)) for m in modules() for p in module_sql_files(m)}
    assert {r[0] for r in rows} == expected
    assert all(len(r[1]) == 64 and r[2] == "sha256-v2" for r in rows)
