"""`dbtool new <module> <what>` (issue 13, item 2): the next numbered sql/ file and its migration, never
replacing a file; an unfinished scaffold fails this suite and its rollback refuses to run."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import psycopg
import pytest

from dbtool import migrate as migrate_lib
from dbtool import paths, scaffold
from dbtool.catalog.expected import load_snapshot
from dbtool.errors import MigrationError, UsageError
from dbtool.repo import table_names
from helpers import copy_project, run_dbtool

SEED_FILE_NAME = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b")


def test_no_unfinished_scaffold_is_left_in_the_project():
    """What `dbtool new` leaves for you to write (TODO(dbtool new), rollback_not_written) is written."""
    assert scaffold.unfinished() == [], "finish what `dbtool new` started (write the SQL and the rollback)"


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbtool: "), done.stderr
    return lines[0]


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


def new(root: Path, *args: str):
    return run_dbtool("new", *args, env={"DBTOOL_ROOT": str(root)})


def numbers(folder: Path, pattern: str) -> list[int]:
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(pattern, p.name)))


def test_new_writes_the_next_numbered_file_and_a_migration_after_the_latest(project, empty_url):
    sql_before = numbers(project / "sql" / "crm", r"(\d{3})_.*\.sql")
    migrations_before = numbers(project / "migrations" / "crm", r"crm_(\d{4})_.*\.py")
    heads = {m.id for m in migrate_lib.load(["crm"])} - {d.id for m in migrate_lib.load(["crm"]) for d in m.depends}

    done = new(project, "crm", "loyalty_points")

    assert done.returncode == 0, done.stderr
    sql_file = project / "sql" / "crm" / f"{sql_before[-1] + 10:03d}_loyalty_points.sql"  # crm's files: gaps of 10
    migration = project / "migrations" / "crm" / f"crm_{migrations_before[-1] + 1:04d}_loyalty_points.py"
    assert sql_file.is_file() and migration.is_file()
    out = done.stdout.splitlines()
    assert out[:2] == [f"created {sql_file}", f"created {migration} (after {', '.join(sorted(heads))})"]
    steps = "\n".join(out)
    for step in ("write the SQL", "write the rollback", "make snapshot", "dbtool snapshot", "make docs",
                 "make migrate", "make test", "dbtool/repo/crm/<table>.py", f"(run the make commands in {project})"):
        assert step in steps, step
    assert done.stderr == ""

    text = sql_file.read_text(encoding="utf-8")  # the header conventions of sql/ (tests/test_headers.py)
    assert text.startswith("-- Spec: ") and "never a path" in text
    assert not re.search(r"(?<![\w.])/(?:work|home|root|tmp|Users)/", text)
    assert not any(d in text.lower() for d in ("lock_timeout:", "statement_timeout:", "transactional:"))
    assert "CREATE TABLE IF NOT EXISTS crm.loyalty_points" in text and "COMMENT ON TABLE crm.loyalty_points" in text
    code = migration.read_text(encoding="utf-8")
    assert f'__depends__ = {{{", ".join(repr(h).replace(chr(39), chr(34)) for h in sorted(heads))}}}' in code
    assert f'apply_files(__file__, "{sql_file.name}")' in code

    # Unfinished: the suite's check names both files, and rollback refuses (the unedited SQL applies nothing).
    left = scaffold.unfinished(project)
    assert {entry.split(":")[0] for entry in left} == {str(sql_file.relative_to(project)),
                                                        str(migration.relative_to(project))}
    env = {"DBTOOL_ROOT": str(project)}
    assert run_dbtool("migrate", "--database-url", empty_url, env=env).returncode == 0
    assert applied(empty_url, migration.stem)
    refused = run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", empty_url, env=env)
    line = one_line_error_last(refused, 1)
    assert f"rollback of {migration.stem} is not written yet" in line and "nothing was rolled back" in line
    assert applied(empty_url, migration.stem)

    # Written as the comments say: it applies, rolls back, and nothing is left unfinished.
    sql_file.write_text("-- Spec: 000_b948dd2ae880f0f9.txt (customer master): points a customer earns.\n"
                        "CREATE TABLE IF NOT EXISTS crm.loyalty_points (id bigint PRIMARY KEY, points int NOT NULL);\n"
                        "COMMENT ON TABLE crm.loyalty_points IS 'Points a customer earned.';\n", encoding="utf-8")
    migration.write_text(re.sub(r"\n# TODO\(dbtool new\).*?\n(?=step)", "\n", code, flags=re.S)
                         .replace("from dbtool.scaffold import rollback_not_written\n", "")
                         .replace("rollback_not_written(__file__)",
                                  'rollback_sql(__file__, "DROP TABLE IF EXISTS crm.loyalty_points")')
                         .replace("TODO(dbtool new): what this migration changes", "loyalty points"), encoding="utf-8")
    assert scaffold.unfinished(project) == []
    assert run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", empty_url, env=env).returncode == 0
    assert run_dbtool("migrate", "--database-url", empty_url, env=env).returncode == 0
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regclass('crm.loyalty_points')").fetchone()[0] == "crm.loyalty_points"
    undone = run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", empty_url, env=env)
    assert undone.returncode == 0 and f"rolled back {migration.stem}" in undone.stderr, undone.stderr
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regclass('crm.loyalty_points')").fetchone()[0] is None


def applied(url: str, migration_id: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT 1 FROM _yoyo_migration WHERE migration_id = %s", (migration_id,)).fetchone())


def one_line_error_last(done, code: int) -> str:
    """Commands that connect say where first; the failure is then the one last line."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: "), done.stderr
    return last


def test_root_option_and_a_module_without_migrations_start_at_010_with_no_dependency(project):
    (project / "migrations" / "loyalty").mkdir()
    (project / "sql" / "loyalty").mkdir()
    done = run_dbtool("--root", str(project), "new", "loyalty", "schema")
    assert done.returncode == 0, done.stderr
    assert (project / "sql" / "loyalty" / "010_schema.sql").is_file()
    code = (project / "migrations" / "loyalty" / "loyalty_0001_schema.py").read_text(encoding="utf-8")
    assert "__depends__: set[str] = set()" in code
    assert "(after none: the module's first migration)" in done.stdout


@pytest.mark.parametrize("gaps, expected", [((10, 20, 30), 40), ((100, 200, 300, 305), 405), ((5,), 15),
                                            ((10, 30, 40, 50), 60), ((10, 15, 25, 40, 55), 70)])
def test_numbering_follows_the_most_common_step_of_the_module(project, monkeypatch, gaps, expected):
    (project / "migrations" / "extra").mkdir()
    (project / "sql" / "extra").mkdir()
    for n in gaps:
        (project / "sql" / "extra" / f"{n:03d}_f{n}.sql").write_text("SELECT 1;\n")
    (project / "sql" / "extra" / "notes.txt").write_text("not numbered\n")
    monkeypatch.setenv("DBTOOL_ROOT", str(project))
    assert scaffold.next_sql_number("extra") == expected


def test_no_number_left_after_999_is_refused(project):
    (project / "migrations" / "extra").mkdir()
    (project / "sql" / "extra").mkdir()
    for n in (980, 990):
        (project / "sql" / "extra" / f"{n}_f.sql").write_text("SELECT 1;\n")
    before = files_of(project)
    line = one_line_error(new(project, "extra", "more"), 2)
    assert "no file number left after 990" in line
    assert files_of(project) == before


@pytest.mark.parametrize("what", ["Loyalty", "loyalty-points", "1points", "loyalty__points", "_points", "points_",
                                  "loyalty points", "../points", "a/b", "pontuação", "x" * 64, "points\n",
                                  "points;drop"])
def test_a_name_that_is_not_snake_case_is_refused_in_one_line(project, what):
    before = files_of(project)
    line = one_line_error(new(project, "crm", what), 2)
    assert "is not a snake_case name" in line
    assert files_of(project) == before


@pytest.mark.parametrize("module", ["nope", "seed", "duckdb", "../crm", "CRM"])
def test_an_unknown_module_is_refused_in_one_line(project, module):
    before = files_of(project)
    line = one_line_error(new(project, module, "points"), 2)
    assert line.startswith("dbtool: unknown module ") and f"(known: {', '.join(paths.modules())})" in line
    assert files_of(project) == before


def test_a_module_without_a_sql_folder_is_refused(project):
    (project / "migrations" / "extra").mkdir()
    line = one_line_error(new(project, "extra", "points"), 2)
    assert "no sql/extra/ folder" in line
    assert not list((project / "migrations" / "extra").iterdir())


@pytest.mark.parametrize("which", ["sql", "migration"])
def test_an_existing_file_is_never_replaced_and_nothing_is_left_half_done(project, monkeypatch, which):
    """A file appearing under the planned name (a concurrent `dbtool new`) is kept as it is (O_EXCL)."""
    monkeypatch.setenv("DBTOOL_ROOT", str(project))
    planned = scaffold.plan("infra", "agents_heartbeat")
    theirs = planned.sql_path if which == "sql" else planned.migration_path
    real_plan = scaffold.plan
    monkeypatch.setattr(scaffold, "plan", lambda module, what: planned if theirs.exists() else real_plan(module, what))
    theirs.write_text("-- someone's own file\n")
    before = files_of(project)
    with pytest.raises(UsageError, match=rf"{re.escape(theirs.name)} already exists: dbtool new never replaces a file"):
        scaffold.create("infra", "agents_heartbeat")
    assert files_of(project) == before  # theirs unchanged; the other file not created, or removed again


def test_the_rollback_placeholder_refuses_naming_the_migration():
    refuse = scaffold.rollback_not_written("/anywhere/migrations/crm/crm_0009_points.py")
    with pytest.raises(MigrationError, match=r"^the rollback of crm_0009_points is not written yet: write it in "
                                             r"migrations/crm/crm_0009_points\.py .*nothing was rolled back$"):
        refuse(None)


def test_unfinished_finds_each_placeholder_and_nothing_else(tmp_path):
    (tmp_path / "sql" / "crm").mkdir(parents=True)
    (tmp_path / "migrations" / "crm").mkdir(parents=True)
    (tmp_path / "sql" / "crm" / "010_a.sql").write_text("-- Spec: x\nSELECT 1;\n")
    (tmp_path / "sql" / "crm" / "020_b.sql").write_text("-- Spec: TODO(dbtool new): say\nSELECT 1;\n")
    (tmp_path / "migrations" / "crm" / "crm_0001_a.py").write_text(
        "from dbtool.scaffold import rollback_not_written\nstep(apply_files(__file__, 'x'), "
        "rollback_not_written(__file__))\n")
    (tmp_path / "migrations" / "crm" / "crm_0002_b.py").write_text("step(apply_files(__file__, 'x'))\n")
    assert scaffold.unfinished(tmp_path) == ["sql/crm/020_b.sql:1", "migrations/crm/crm_0001_a.py:2"]


@pytest.mark.parametrize("module", paths.modules())
def test_a_generated_repository_module_works_like_the_committed_one_for_every_table(module):
    """What `dbtool snapshot` writes for a new table, rendered for each existing one: same Table, same functions."""
    for table in table_names(module):
        text = scaffold.render_repo_module(module, table)
        assert text is not None
        assert text.startswith(f'"""{module}.{table}: ')
        namespace = {"__name__": f"dbtool.repo.{module}._generated_{table}", "__package__": f"dbtool.repo.{module}"}
        exec(compile(text, f"<{module}.{table}>", "exec"), namespace)  # noqa: S102 - our own generated code
        committed = importlib.import_module(f"dbtool.repo.{module}.{table}")
        generated = namespace["T"]
        assert (generated.qualified, generated.columns, generated.primary_key, generated.unique_keys) == \
               (committed.T.qualified, committed.T.columns, committed.T.primary_key, committed.T.unique_keys)
        assert generated.row is committed.T.row
        for name in ("get", "insert", "update", "delete", "page", "load"):
            assert callable(namespace[name]) and hasattr(committed, name), (table, name)
        assert ("upsert" in namespace) == (generated.natural_key is not None), table  # as the repo test demands
        comment = next(t.comment for t in load_snapshot(module).tables() if t.name == table)
        assert " ".join(text.split('"""')[1].split()[1:]).startswith(" ".join((comment or "").split())[:40])
