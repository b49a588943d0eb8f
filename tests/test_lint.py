"""`dbtool lint`: our own sql/ is clean, exit codes, output formats, ignores, and what the CLI imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from dbtool.lint import engine, rules
from helpers import run_dbtool

CORPUS = Path(__file__).with_name("lint_corpus")
UNSAFE = CORPUS / "create_index_not_concurrent.sql"
SAFE = CORPUS / "safe" / "index_on_new_table.sql"


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith(("dbtool:", "Error:"))]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_our_sql_reports_no_finding_in_the_default_group():
    out = run_dbtool("lint", "sql/", "--format", "json")
    doc = json.loads(out.stdout)
    assert out.returncode == 0, [f"{f['file']}:{f['line']} {f['rule']}" for f in doc["findings"]]
    assert doc["ok"] and doc["findings"] == []
    assert doc["summary"]["files"] >= 38  # every module's schema files; DuckDB's and the seeds' skipped
    assert not any(f["file"].startswith(("sql/duckdb/", "sql/seed/")) for f in doc["files"])
    for f in doc["ignored"]:  # an ignore in sql/ says why
        assert len(f["reason"]) > 20, f
    text = run_dbtool("lint", "sql/")
    assert text.returncode == 0 and "lint: OK: no findings in" in text.stdout
    assert "skipped sql/duckdb/, sql/seed/" in text.stderr


def test_exit_codes():
    assert run_dbtool("lint", str(SAFE)).returncode == 0
    found = run_dbtool("lint", str(UNSAFE))
    assert found.returncode == 1
    assert found.stdout.startswith(f"{UNSAFE.relative_to(CORPUS.parents[1])}:2:1: create-index-not-concurrent ")
    for args, said in [((), "nothing to lint"), (("nope.sql",), "nope.sql: no such file or folder"),
                       (("--rules", "bogus", str(SAFE)), "unknown rule or group 'bogus'"),
                       (("--module", "crm", str(SAFE)), "--module applies to --pending only"),
                       (("--module", "nope", "--pending"), "unknown module nope")]:
        out = run_dbtool("lint", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert said in one_line_error(out)
    bad_format = run_dbtool("lint", "--format", "xml", str(SAFE))
    assert bad_format.returncode == 2 and "Traceback" not in bad_format.stderr
    unreachable = run_dbtool("lint", str(SAFE), "--database-url", "postgresql://x@/db?host=/nonexistent")
    assert unreachable.returncode == 3
    assert "cannot connect" in one_line_error(unreachable)


def test_json_output():
    out = run_dbtool("lint", "--format", "json", str(UNSAFE), str(SAFE))
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["format"] == "dbtool.lint/1" and doc["ok"] is False
    assert doc["summary"]["files"] == 2 and doc["summary"]["findings"] == 1
    (f,) = doc["findings"]
    assert (f["line"], f["column"], f["rule"], f["group"]) == (2, 1, "create-index-not-concurrent", "default")
    assert f["instead"].startswith("CREATE INDEX CONCURRENTLY") and f["why"]
    assert doc["parser"]["grammar_major"] >= 15 and doc["server"] is None
    assert [x["transactional"] for x in doc["files"]] == [True, True]
    assert doc["files"][0]["lock_timeout"] == "10s" and doc["files"][0]["statement_timeout"] == "15min"
    assert set(doc["rules"]) == {r.id for r in rules.RULES.values() if r.group != rules.STYLE}


def test_junit_output():
    ignored = CORPUS / "safe" / "ignored_with_reason.sql"
    out = run_dbtool("lint", "--format", "junit", str(UNSAFE), str(SAFE), str(ignored))
    assert out.returncode == 1
    root = ET.fromstring(out.stdout)
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "1"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["tests/lint_corpus/create_index_not_concurrent.sql"].find("failure")
    assert failure is not None and failure.get("type") == "create-index-not-concurrent"
    assert "tests/lint_corpus/create_index_not_concurrent.sql:2:1: create-index-not-concurrent" in failure.text
    assert cases["tests/lint_corpus/safe/index_on_new_table.sql"].find("failure") is None
    ignored = cases["tests/lint_corpus/safe/ignored_with_reason.sql"].find("system-out")
    assert ignored is not None and "ignored create-index-not-concurrent at line 3: crm.reco_run" in ignored.text
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["parser"].startswith("PostgreSQL ")


def test_github_annotations():
    out = run_dbtool("lint", "--format", "github", str(UNSAFE), str(CORPUS / "add_primary_key_without_index.sql"))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("::warning file=tests/lint_corpus/create_index_not_concurrent.sql,line=2,col=1,"
                               "title=dbtool lint create-index-not-concurrent::CREATE INDEX customer_last_name_idx")
    assert sum(ln.startswith("::warning file=") for ln in lines) == 3
    assert lines[-1].startswith("::notice title=dbtool lint::3 finding(s) in 2 of 2 file(s)")
    assert all("\n" not in ln and ln.startswith("::") for ln in lines)


def test_list_rules_and_help():
    out = run_dbtool("lint", "--list-rules")
    assert out.returncode == 0
    for rule in rules.RULES.values():
        assert f"{rule.id}  [{rule.group}]" in out.stdout
    assert out.stdout.count("    instead: ") == len(rules.RULES)
    helped = run_dbtool("lint", "--help")
    assert helped.returncode == 0 and "--pending" in helped.stdout and "-- dbtool: ignore" in helped.stdout


def test_the_parser_is_imported_only_by_the_command():
    code = ("import sys; from dbtool.cli import cli; import dbtool.lint_cli; "
            "assert 'postgast' not in sys.modules and 'dbtool.lint' not in sys.modules, 'imported'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def lint_text(tmp_path: Path, text: str, **kw) -> engine.Report:
    path = tmp_path / "m.sql"
    path.write_text(text)
    return engine.lint([path], enabled=rules.select(kw.pop("spec", None), False), **kw)


def test_an_ignore_belongs_to_the_statement_it_sits_on_or_above(tmp_path):
    report = lint_text(tmp_path, """\
CREATE INDEX a_idx ON crm.customer (email); -- dbtool: ignore create-index-not-concurrent: trailing, same line
-- dbtool: ignore create-index-not-concurrent: above the next one,
--   and its reason goes on here
CREATE INDEX b_idx
    ON crm.customer (first_name);
CREATE INDEX c_idx ON crm.customer (last_name);
DO $$ BEGIN
    -- dbtool: ignore access-exclusive-held: inside the DO block's body
    ALTER TABLE crm.customer ADD COLUMN x text;
    UPDATE crm.customer SET x = '';
END $$;
""")
    assert [(f.line, f.rule) for f in report.findings] == [(6, "create-index-not-concurrent")]
    assert [(f.line, f.reason) for f in report.waived] == [
        (1, "trailing, same line"), (4, "above the next one, and its reason goes on here"),
        (9, "inside the DO block's body")]


def test_an_ignore_waives_only_its_rule_and_statement(tmp_path):
    report = lint_text(tmp_path, """\
-- dbtool: ignore drop-table: not this statement's rule
CREATE INDEX a_idx ON crm.customer (email);

-- dbtool: ignore create-index-not-concurrent: after the last statement
""")
    assert sorted((f.line, f.rule) for f in report.findings) == [
        (1, "ignore-unused"), (2, "create-index-not-concurrent"), (4, "ignore-unused")]
    # A rule that is not checked leaves its ignores alone.
    report = lint_text(tmp_path, "-- dbtool: ignore prefer-text: legacy width\nCREATE TABLE crm.t (a varchar(3));\n")
    assert report.findings == []


def test_meta_rules_cannot_be_ignored(tmp_path):
    report = lint_text(tmp_path, "-- dbtool: ignore syntax-error: no\nSELECT FROM WHERE;\n")
    assert sorted(f.rule for f in report.findings) == ["ignore-unknown-rule", "syntax-error"]


def test_folders_skip_duckdb_and_seed_unless_named(tmp_path):
    report = engine.lint([Path("sql/seed/crm.sql")], enabled=rules.select(None, False))
    assert report.findings == [] and report.files[0].shown == "sql/seed/crm.sql"
    assert any("psql meta-command(s) skipped" in n for n in report.notes)


@pytest.mark.parametrize("spec,expected", [("default", 0), ("style", 1), ("all", 1), ("prefer-text,drop-table", 1)])
def test_rule_selection(tmp_path, spec, expected):
    report = lint_text(tmp_path, "CREATE TABLE crm.t (a varchar(3));\n", spec=spec)
    assert len(report.findings) == expected


def test_the_readme_lists_every_rule_as_the_code_says():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Linting a migration", 1)[1].split("\n## ", 1)[0]
    for rule in rules.RULES.values():
        if rule.group == rules.DEFAULT:
            assert f"| `{rule.id}` | {rule.summary} | {rule.fix} |" in section, rule.id
        else:
            assert f"`{rule.id}`" in section, rule.id
