"""Settings: one module, read lazily, validated in one line (exit 2), all listed in the README."""

from __future__ import annotations

import re

import pytest

from dbtool import paths, settings
from dbtool.errors import UsageError
from helpers import run_dbtool


def test_readme_table_lists_exactly_the_settings():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([A-Z_]+)` \|", section, re.M)
    assert sorted(listed) == sorted(settings.SETTINGS)


@pytest.mark.parametrize("name,raw", [("DBTOOL_POOL_MAX", "x"), ("DBTOOL_POOL_MAX", "0"),
                                      ("DBTOOL_CONNECT_TIMEOUT", "1.5"), ("DBTOOL_PROGRESS", "maybe")])
def test_bad_value_is_a_usage_error_naming_the_variable(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(UsageError, match=rf"^{name}={raw!r}: "):
        settings.get(name)


def test_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv("DBTOOL_CONNECT_TIMEOUT", raising=False)
    assert settings.get("DBTOOL_CONNECT_TIMEOUT") == 10
    monkeypatch.setenv("DBTOOL_CONNECT_TIMEOUT", "7")
    assert settings.get("DBTOOL_CONNECT_TIMEOUT") == 7
    settings.override("DBTOOL_CONNECT_TIMEOUT", 3)
    try:
        assert settings.get("DBTOOL_CONNECT_TIMEOUT") == 3
    finally:
        settings.clear_overrides()


def test_importing_the_cli_reads_no_setting(monkeypatch):
    """A bad value only matters to a command that uses it: --help and other commands still work."""
    out = run_dbtool("--help", env={"DBTOOL_STATS_EXACT_MAX_BYTES": "abc", "DBTOOL_POOL_MAX": "x"})
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("args,env,name", [
    (["stats"], {"DBTOOL_STATS_EXACT_MAX_BYTES": "abc"}, "DBTOOL_STATS_EXACT_MAX_BYTES"),
    (["status"], {"DBTOOL_CONNECT_TIMEOUT": "soon"}, "DBTOOL_CONNECT_TIMEOUT"),
    (["migrate", "--dry-run"], {"DBTOOL_PROGRESS": "maybe"}, "DBTOOL_PROGRESS"),
])
def test_cli_bad_setting_exits_2_in_one_line(args, env, name):
    out = run_dbtool(*args, env=env)
    assert out.returncode == 2, out.stderr
    assert name in out.stderr and "Traceback" not in out.stderr


def test_help_shows_the_variables():
    assert "DBTOOL_STATS_EXACT_MAX_BYTES" in run_dbtool("stats", "--help").stdout
    assert "DBTOOL_CONNECT_TIMEOUT" in run_dbtool("validate", "--help").stdout
    assert "DBTOOL_ROOT" in run_dbtool("--help").stdout
    assert "DBTOOL_DUCKDB_PATH" in run_dbtool("analytics", "search", "--help").stdout


def test_wrong_root_is_one_line_saying_how_to_fix_it(tmp_path):
    out = run_dbtool("status", env={"DBTOOL_ROOT": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "set DBTOOL_ROOT" in out.stderr and "Traceback" not in out.stderr


def test_outside_a_checkout_is_one_line(tmp_path):
    """A non-editable install has no sql/ beside the package: one line, exit 2."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(paths.ROOT / "dbtool", tmp_path / "dbtool")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("DBTOOL_", "PG"))}
    out = subprocess.run([sys.executable, "-m", "dbtool", "status"], capture_output=True, text=True,
                         cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert "no sql/ and migrations/" in out.stderr and "Traceback" not in out.stderr
