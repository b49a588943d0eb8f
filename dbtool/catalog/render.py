"""Findings as text (grouped by object), JSON (documented, versioned) or JUnit XML."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from xml.etree import ElementTree as ET

from ..junit import Suites
from ..progress import colour_enabled
from .diff import ERROR, INFO, WARNING
from .validate import Report

JSON_FORMAT = "dbtool.validate/1"
COLOURS = {ERROR: "\033[31m", WARNING: "\033[33m", INFO: "\033[2m"}


def use_colour(stream=None) -> bool:
    return colour_enabled(stream or sys.stdout)


def text(report: Report, *, verbose: bool = False, colour: bool = False, explain: bool = False) -> str:
    shown = [f for f in report.findings if verbose or f.severity != INFO]
    groups: dict[str, list] = defaultdict(list)
    for f in shown:
        groups[f.table or f.object].append(f)
    lines = []
    for obj in sorted(groups):
        lines.append(obj)
        for f in groups[obj]:
            tag = f"{f.severity:7}"
            if colour:
                tag = f"{COLOURS[f.severity]}{tag}\033[0m"
            lines.append(f"  {tag} {f.message()}")
            if explain and f.why:
                lines.append(f"          why: {f.why}")
    s = report.summary
    hidden = "" if verbose or not s["info"] else f", {s['info']} info (--verbose shows them)"
    verdict = "OK" if not report.errors else "DRIFT"
    lines.append(f"{verdict}: {s['errors']} error(s), {s['warnings']} warning(s){hidden}; "
                 f"{s['checked']} objects in {', '.join(report.modules)} checked in {s['seconds']:.2f}s"
                 + (" (strict)" if report.strict else ""))
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    return json.dumps({
        "format": JSON_FORMAT,
        "database": report.database,
        "modules": report.modules,
        "strict": report.strict,
        "ok": report.errors == 0,
        "summary": report.summary,
        "findings": [f.as_dict() for f in report.findings],
    }, indent=2, default=str) + "\n"


def _module_of(kind: str, name: str) -> str:
    if kind == "file":  # sql/<module>/NNN_x.sql
        return name.split("/")[1]
    if kind == "migration":  # <module>_NNNN_what
        return name.split("_", 1)[0]
    return name.split(".", 1)[0]


def junit(report: Report) -> str:
    """One test case per checked object; errors fail it, warnings go to its system-out."""
    by_object = defaultdict(list)
    for f in report.findings:
        by_object[(f.kind, f.object)].append(f)
    cases = list(report.checked) + [k for k in by_object if k not in set(report.checked)]
    suites = Suites("dbtool validate")
    for kind, name in cases:
        module = _module_of(kind, name)
        case = suites.case(module, f"{module}.{kind}", name)
        errors = [f for f in by_object.get((kind, name), []) if f.severity == ERROR]
        others = [f for f in by_object.get((kind, name), []) if f.severity != ERROR]
        if errors:
            failure = ET.SubElement(case, "failure", message=errors[0].message(), type=errors[0].problem)
            failure.text = "\n".join(f.message() for f in errors)
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(f"{f.severity}: {f.message()}" for f in others)
    return suites.xml()
