"""docs/CLI.md: every command's --help, generated and never stale; every --help shows an example."""

from __future__ import annotations

import pytest

from dbtool import docs, paths
from dbtool.cli import cli
from helpers import run_dbtool

COMMANDS = [path for path, _cmd, _help in docs.walk(cli)]


def test_committed_cli_reference_is_current():
    committed = (paths.ROOT / "docs" / "CLI.md").read_text(encoding="utf-8")
    assert committed == docs.cli_markdown(), "docs/CLI.md is stale: run `make docs` and commit it"


def test_reference_lists_every_command_once_with_its_help():
    text = docs.cli_markdown()
    assert len(COMMANDS) > 10 and len(set(COMMANDS)) == len(COMMANDS)
    for path, cmd, help_text in docs.walk(cli):
        assert text.count(f"\n## {path}\n") == 1
        assert help_text.rstrip() in text
        assert f"Usage: {path} " in help_text


def test_every_command_help_shows_an_example():
    missing = docs.commands_without_example()
    assert missing == [], f"--help without an 'Example' (add an epilog): {missing}"


@pytest.mark.parametrize("path", ["dbtool wait", "dbtool backup", "dbtool restore", "dbtool docs"])
def test_help_of_the_real_cli_matches_the_reference(path):
    done = run_dbtool(*path.split()[1:], "--help", env={"COLUMNS": "120"})
    assert done.returncode == 0
    usage, body = done.stdout.rstrip().split("\n", 1)  # `python -m dbtool ...` in the usage line
    assert usage.startswith("Usage: ") and f"```text\nUsage: {path} " in docs.cli_markdown()
    assert body in docs.cli_markdown()
