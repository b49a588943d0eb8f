"""Findings as text (file:line:col rule message), JSON (dbtool.lint/1), GitHub annotations or JUnit XML.

JUnit follows `validate --format junit` (dbtool.catalog.render.junit), whose writer is bound to
validate's report: one test suite per module, one test case per linted file, failing with its
findings; waived findings, with their reasons, go to the case's system-out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from xml.etree import ElementTree as ET

from ..junit import Suites
from .checks import Finding
from .engine import Report
from .rules import RULES

JSON_FORMAT = "dbtool.lint/1"


def _summary(report: Report) -> dict:
    return {"files": len(report.files), "statements": sum(f.statements for f in report.files),
            "findings": len(report.findings), "ignored": len(report.waived), "seconds": round(report.seconds, 3)}


def verdict(report: Report) -> str:
    s = _summary(report)
    files_with = len({f.file for f in report.findings})
    head = f"{s['findings']} finding(s) in {files_with} of {s['files']} file(s)" if s["findings"] else \
        f"OK: no findings in {s['files']} file(s)"
    ignored = f", {s['ignored']} ignored with a reason" if s["ignored"] else ""
    return f"{head} ({s['statements']} statements{ignored}; {s['seconds']:.2f}s)"


def text(report: Report, *, colour: bool = False) -> str:
    lines = []
    for f in report.findings:
        rule = f"\033[33m{f.rule}\033[0m" if colour else f.rule
        lines.append(f"{f.file}:{f.line}:{f.column}: {rule} {f.message}")
        lines.append(f"    instead: {RULES[f.rule].fix}")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    lines.append(f"lint: {verdict(report)}")
    return "\n".join(lines) + "\n"


def context_lines(report: Report) -> list[str]:
    """What the findings were judged against (stderr in text mode)."""
    out = [f"lint: parser: {report.parser}", f"lint: catalog: {report.catalog}"]
    return out + [f"lint: {n}" for n in report.notes]


def _finding(f: Finding) -> dict:
    rule = RULES[f.rule]
    d = {"file": f.file, "line": f.line, "column": f.column, "rule": f.rule, "group": rule.group,
         "message": f.message, "why": rule.summary, "instead": rule.fix}
    if f.reason is not None:
        d["reason"] = f.reason
    return d


def as_json(report: Report) -> str:
    return json.dumps({
        "format": JSON_FORMAT,
        "ok": report.ok,
        "parser": {"description": report.parser, "grammar_version": report.grammar,
                   "grammar_major": report.grammar // 10000},
        "server": None if report.server_version is None else {
            "version": report.server_version, "major": report.server_version // 10000},
        "database": report.database,
        "catalog": report.catalog,
        "volatility": report.volatility,
        "rules": report.rules,
        "summary": _summary(report),
        "warnings": report.warnings,
        "notes": report.notes,
        "files": [f.as_dict() for f in report.files],
        "findings": [_finding(f) for f in report.findings],
        "ignored": [_finding(f) for f in report.waived],
    }, indent=2) + "\n"


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def github(report: Report) -> str:
    """Workflow commands: one `::warning file=..,line=..,col=..,title=..::message` per finding."""
    lines = [f"::warning file={_escape(f.file, prop=True)},line={f.line},col={f.column},"
             f"title={_escape('dbtool lint ' + f.rule, prop=True)}::"
             f"{_escape(f.message + '. Instead: ' + RULES[f.rule].fix)}" for f in report.findings]
    lines += [f"::warning title=dbtool lint::{_escape(w)}" for w in report.warnings]
    lines.append(f"::notice title=dbtool lint::{_escape(verdict(report))}")
    return "\n".join(lines) + "\n"


def _module(shown: str) -> str:
    parts = shown.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "sql" else (parts[-2] if len(parts) > 1 else "files")


def junit(report: Report) -> str:
    by_file: dict[str, list[Finding]] = defaultdict(list)
    waived: dict[str, list[Finding]] = defaultdict(list)
    for f in report.findings:
        by_file[f.file].append(f)
    for f in report.waived:
        waived[f.file].append(f)
    suites = Suites("dbtool lint")
    for fr in report.files:
        module = _module(fr.shown)
        if not suites.suite(module).findall("properties"):  # the grammar warning, where JUnit keeps context
            props = ET.SubElement(suites.suite(module), "properties")
            for name, value in [("parser", report.parser), ("catalog", report.catalog)] + [
                    ("warning", w) for w in report.warnings]:
                ET.SubElement(props, "property", name=name, value=value)
        case = suites.case(module, f"lint.{module}", fr.shown)
        found = by_file.get(fr.shown, [])
        if found:
            failure = ET.SubElement(case, "failure", message=f"{len(found)} finding(s): {found[0].rule}",
                                    type=found[0].rule)
            failure.text = "\n".join(f"{f.file}:{f.line}:{f.column}: {f.rule} {f.message}" for f in found)
        if waived.get(fr.shown):
            ET.SubElement(case, "system-out").text = "\n".join(
                f"ignored {f.rule} at line {f.line}: {f.reason}" for f in waived[fr.shown])
    return suites.xml()


def rules_table() -> str:
    """--list-rules: every rule, its group, what goes wrong and the safe alternative."""
    lines = []
    for r in RULES.values():
        lines.append(f"{r.id}  [{r.group}]")
        lines.append(f"    {r.summary}")
        lines.append(f"    instead: {r.fix}")
    return "\n".join(lines) + "\n"
