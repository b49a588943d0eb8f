"""The README's "Adding a table" recipe works as written (issue 13, item 3).

A copy of the project (its git-tracked files, and new ones git does not ignore) gets a table the way a new
user adds one: the commands of the recipe's code block in README.md, run as they are written there (only the
editor is played by this test, and `make test` is told which tests to run). The copy's own tests that guard
the schema then pass, with no test edited: the tables, migrations and counts they check come from sql/ and the
snapshot. When the README's block changes, this test runs the new block; a line it does not know how to run
fails it, so the README cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dbtool import scaffold
from dbtool.paths import ROOT
from helpers import dbtool_env

SECTION = "## Adding a table (or changing one)"

# The copy's tests that guard the schema: what the recipe's `make test` runs there (the whole suite takes minutes).
GUARDS = [
    "tests/test_headers.py",
    "tests/test_docs.py",
    "tests/test_schema_facts.py",
    "tests/test_migrate.py",
    "tests/test_scaffold.py::test_no_unfinished_scaffold_is_left_in_the_project",
    "tests/test_validate.py::test_committed_snapshot_is_current",
    "tests/test_cli_reference.py::test_committed_cli_reference_is_current",
    "tests/repo/test_repo_core.py::test_rows_generated_is_current",
    "tests/repo/test_repo_core.py::test_every_table_has_a_module_shaped_like_the_migrated_table",
    "tests/test_privileges.py::test_snapshot_lists_the_live_tables",
    "tests/test_privileges.py::test_schema_table_and_sequence_privileges",
    "tests/test_seed_stats_smoke.py::test_seed_twice_then_clear_removes_exactly_the_seed_rows",
    "tests/test_seed_stats_smoke.py::test_smoke_passes_and_leaves_no_trace",
]

# What the test's "editor" writes: the table a user would, with each kind of object the docs and repo tests check.
TABLE_SQL = """\
-- Spec: 000_b948dd2ae880f0f9.txt (customer master): loyalty points a customer earns and spends.
-- Designed in tests/test_recipe.py: an identity key, a natural key, a foreign key, a CHECK and an index.
CREATE TABLE IF NOT EXISTS {module}.{table} (
    id bigint GENERATED ALWAYS AS IDENTITY,
    customer_code varchar(255) NOT NULL,
    entry_ref varchar(64) NOT NULL,
    points integer NOT NULL,
    reason varchar(20) NOT NULL DEFAULT 'order',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {table}_pkey PRIMARY KEY (id),
    CONSTRAINT {table}_entry_ref_key UNIQUE (entry_ref),
    CONSTRAINT {table}_customer_code_fkey FOREIGN KEY (customer_code)
        REFERENCES {module}.customer (customer_code) ON DELETE CASCADE,
    CONSTRAINT {table}_reason_check CHECK (reason::text IN ('order', 'refund', 'gift'))
);

CREATE INDEX IF NOT EXISTS {table}_customer_code_created_at_idx ON {module}.{table} (customer_code, created_at);

COMMENT ON TABLE {module}.{table} IS 'Loyalty points a customer earned (positive) or spent (negative).';
COMMENT ON COLUMN {module}.{table}.entry_ref IS 'The source system''s reference of the entry; one row each.';
COMMENT ON COLUMN {module}.{table}.points IS 'Points earned (positive) or spent (negative).';
COMMENT ON COLUMN {module}.{table}.reason IS 'Why: order, refund or gift.';
"""


def recipe() -> list[str]:
    """The lines of the first ```sh block of README.md's recipe section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"README.md's {SECTION!r} has no ```sh block of commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def command(line: str) -> list[str]:
    """A line as the shell splits it, without its trailing comment."""
    return shlex.split(line, comments=True)


def copy_checkout(dest: Path) -> Path:
    """The checkout as a clone with the current changes would have it: git's files, not what it ignores."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the project's files are not known")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted from the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def venv_of_this_run(root: Path) -> str:
    """root/.venv/bin/{dbtool,pytest}: the interpreter running this test, on the copy's package (PYTHONPATH).
    Returns the stamp file make must not rebuild (it would install into a new venv)."""
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, module in (("dbtool", "dbtool"), ("pytest", "pytest")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m {module} "$@"\n')
        (bin_dir / name).chmod(0o755)
    stamp = root / ".venv" / f".installed-{os.getuid()}"
    stamp.touch()
    return str(stamp.relative_to(root))


def run(argv: list[str], root: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"$ {shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def edit(paths: list[Path], created: list[Path], module: str, table: str) -> None:
    """The editor: the SQL of a new table, and the migration's rollback, written where the comments say."""
    assert sorted(paths) == sorted(created), f"the recipe edits {paths}, `dbtool new` created {created}"
    sql_file = next(p for p in paths if p.suffix == ".sql")
    migration = next(p for p in paths if p.suffix == ".py")
    sql_file.write_text(TABLE_SQL.format(module=module, table=table), encoding="utf-8")
    code = migration.read_text(encoding="utf-8")
    assert "rollback_not_written(__file__)" in code and scaffold.MARKER in code
    code = re.sub(rf"^# {re.escape(scaffold.MARKER)}.*?\n(?=step\()", "", code, flags=re.S | re.M)
    code = code.replace("from dbtool.scaffold import rollback_not_written\n", "")
    code = code.replace("rollback_not_written(__file__)",
                        f'rollback_sql(__file__, "DROP TABLE IF EXISTS {module}.{table}")')
    code = code.replace(f"{scaffold.MARKER}: what this migration changes", f"{module}.{table}, a new table")
    migration.write_text(code, encoding="utf-8")


def test_adding_a_table_as_the_readme_says_leaves_every_schema_test_passing(tmp_path, empty_url):
    lines = recipe()
    kinds = [command(line)[0] for line in lines]
    assert ".venv/bin/dbtool" in kinds and "$EDITOR" in kinds and "make" in kinds, lines
    root = copy_checkout(tmp_path / "project")
    stamp = venv_of_this_run(root)
    env = dbtool_env({"PYTHONPATH": str(root), "DBTOOL_ROOT": str(root), "DATABASE_URL": empty_url})
    created: list[Path] = []
    module = table = ""
    ran = []

    for line in lines:
        argv = command(line)
        if argv[:2] == [".venv/bin/dbtool", "new"]:
            module, table = argv[2], argv[3]
            done = run(argv, root, env)
            created = [root / ln.split()[1] for ln in done.stdout.splitlines() if ln.startswith("created ")]
            assert len(created) == 2 and all(p.is_file() for p in created), done.stdout
        elif argv[0] == "$EDITOR":
            edit([p for pattern in argv[1:] for p in root.glob(pattern)], created, module, table)
        elif argv[0] == "make":  # the venv is this run's: make must not build one (-o: the stamp is up to date)
            extra = [f"PYTEST_ARGS=-q {' '.join(GUARDS)}"] if argv[1:] == ["test"] else []
            done = run(["make", "-o", stamp, *argv[1:], *extra], root, env, timeout=600)
            if argv[1:] == ["test"]:
                assert re.search(r"\b\d+ passed\b", done.stdout) and " failed" not in done.stdout, done.stdout
        elif argv[0] == ".venv/bin/dbtool":
            run(argv, root, env)
        else:
            pytest.fail(f"README.md's recipe has a line this test cannot run: {line!r} (teach test_recipe.py)")
        ran.append(argv[:2])

    assert ["make", "snapshot"] in ran and ["make", "migrate"] in ran and ["make", "test"] in ran, ran
    # What the recipe promised: the table in the database, the snapshot, the docs and a repository module.
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regclass(%s)::text", (f"{module}.{table}",)).fetchone()[0] == f"{module}.{table}"
    assert f'"{module}.{table}"' in (root / "dbtool" / "catalog" / "snapshots" / f"{module}.json").read_text()
    assert f"### `{module}.{table}`" in (root / "docs" / "SCHEMA.md").read_text(encoding="utf-8")
    repo_module = (root / "dbtool" / "repo" / module / f"{table}.py").read_text(encoding="utf-8")
    assert f'T = Table("{module}", "{table}", ' in repo_module and "upsert" in repo_module  # entry_ref is its key
    assert scaffold.unfinished(root) == []
    # ... all of it in the copy: nothing was written into this checkout.
    assert not list((ROOT / "sql" / module).glob(f"*_{table}.sql"))
    assert not (ROOT / "dbtool" / "repo" / module / f"{table}.py").exists()
