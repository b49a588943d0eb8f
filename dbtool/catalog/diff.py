"""Compare an expected catalog with a live one: every missing, extra or different object.

Missing and different objects are errors; extra objects are warnings (errors under
--strict); column order and comments are informational. Health problems of the live
side (INVALID or not-ready indexes, NOT VALID constraints) are errors wherever found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .read import KINDS

ERROR, WARNING, INFO = "error", "warning", "info"

# Attributes compared per kind (errors when they differ) and informational ones.
COMPARED = {
    "schema": (),
    "table": ("relkind",),
    "column": ("type", "nullable", "default", "identity", "generated"),
    "constraint": ("type", "columns", "definition", "deferrable", "initially_deferred"),
    "index": ("unique", "definition"),
    "enum": ("labels",),
    "trigger": ("definition", "enabled"),
    "function": ("returns", "language", "volatility", "source"),
}
FK_COMPARED = ("columns", "references", "ref_columns", "on_update", "on_delete", "match", "deferrable",
               "initially_deferred")
INFORMATIONAL = ("position", "comment")
CHILD_KINDS = ("column", "constraint", "index", "trigger")  # belong to a table


@dataclass
class Finding:
    severity: str
    kind: str
    object: str
    problem: str  # missing extra differs renamed invalid not_ready not_valid edited file_missing pending ...
    attribute: str | None = None
    expected: Any = None
    found: Any = None
    detail: str | None = None
    table: str | None = field(default=None, repr=False)

    def message(self) -> str:
        what = f"{self.problem} {self.kind} {self.object}"
        if self.attribute:
            what += f" {self.attribute}"
        if self.problem in ("differs", "renamed"):
            what += f": expected {_show(self.expected)}, found {_show(self.found)}"
        if self.detail:
            what += f" ({self.detail})"
        return what

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("table")
        d["message"] = self.message()
        return d


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def owner_table(kind: str, name: str, attrs: dict) -> str | None:
    if kind in CHILD_KINDS:
        return attrs.get("table") or name.rsplit(".", 1)[0]
    return None


def diff(expected: dict, live: dict, *, strict: bool = False) -> list[Finding]:
    extra_severity = ERROR if strict else WARNING
    findings: list[Finding] = []
    missing_parents = expected.get("table", {}).keys() - live.get("table", {}).keys()
    extra_parents = live.get("table", {}).keys() - expected.get("table", {}).keys()

    for kind in KINDS:
        exp, got = expected.get(kind, {}), live.get(kind, {})
        for name, e in exp.items():
            g = got.get(name)
            if e == g and not _unhealthy(kind, g):
                continue  # the common case: identical and healthy
            table = owner_table(kind, name, e)
            if g is None:
                if table not in missing_parents:  # else implied by the missing table
                    findings.append(Finding(ERROR, kind, name, "missing", table=table))
                continue
            findings.extend(_health(kind, name, g, table))
            findings.extend(_differences(kind, name, e, g, table))
        for name in got.keys() - exp.keys():
            g = got[name]
            table = owner_table(kind, name, g)
            findings.extend(_health(kind, name, g, table))
            if table not in extra_parents:
                findings.append(Finding(extra_severity, kind, name, "extra", table=table))
    findings = _pair_renamed_indexes(findings, expected.get("index", {}), live.get("index", {}), strict)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(findings, key=lambda f: (order[f.kind], f.object))


def _pair_renamed_indexes(findings: list[Finding], exp: dict, got: dict, strict: bool) -> list[Finding]:
    """A missing and an extra index on one table with the same definition: one index, renamed."""
    missing = {f.object: f for f in findings if f.kind == "index" and f.problem == "missing"}
    extra = {f.object: f for f in findings if f.kind == "index" and f.problem == "extra"}
    for name, f in list(missing.items()):
        want = (exp[name]["table"], exp[name]["definition"], exp[name]["unique"])
        twin = next((x for x in extra if (got[x]["table"], got[x]["definition"], got[x]["unique"]) == want), None)
        if twin is None:
            continue
        findings.remove(f)
        findings.remove(extra.pop(twin))
        findings.append(Finding(ERROR if strict else WARNING, "index", name, "renamed", "name",
                                name.rsplit(".", 1)[1], twin.rsplit(".", 1)[1],
                                detail="same definition under another name", table=f.table))
    return findings


def _differences(kind: str, name: str, e: dict, g: dict, table: str | None) -> list[Finding]:
    compared = FK_COMPARED if kind == "constraint" and e.get("type") == "foreign key" else COMPARED[kind]
    out = [Finding(ERROR, kind, name, "differs", attr, e.get(attr), g.get(attr),
                   detail=_enum_detail(e, g) if kind == "enum" else None, table=table)
           for attr in compared if e.get(attr) != g.get(attr)]
    out += [Finding(INFO, kind, name, "differs", attr, e.get(attr), g.get(attr), table=table)
            for attr in INFORMATIONAL if attr in e and e.get(attr) != g.get(attr)]
    return out


def _unhealthy(kind: str, attrs: dict) -> bool:
    return (kind == "index" and not (attrs.get("valid", True) and attrs.get("ready", True))) or (
        kind == "constraint" and not attrs.get("validated", True))


def _health(kind: str, name: str, attrs: dict, table: str | None) -> list[Finding]:
    out = []
    if kind == "index" and not attrs.get("valid", True):
        out.append(Finding(ERROR, kind, name, "invalid", detail="a failed CREATE INDEX CONCURRENTLY leaves this; "
                           "IF NOT EXISTS keeps it: drop and rebuild it", table=table))
    elif kind == "index" and not attrs.get("ready", True):
        out.append(Finding(ERROR, kind, name, "not_ready", table=table))
    if kind == "constraint" and not attrs.get("validated", True):
        out.append(Finding(ERROR, kind, name, "not_valid",
                           detail="created NOT VALID and never validated: existing rows are unchecked", table=table))
    return out


def _enum_detail(e: dict, g: dict) -> str:
    want, have = e.get("labels") or [], g.get("labels") or []
    parts = []
    if missing := [x for x in want if x not in have]:
        parts.append("missing labels " + ", ".join(missing))
    if extra := [x for x in have if x not in want]:
        parts.append("extra labels " + ", ".join(extra))
    if not parts:
        parts.append("label order differs")
    return "; ".join(parts)


def checked_objects(expected: dict, live: dict) -> list[tuple[str, str]]:
    """Every (kind, name) looked at: the union of both sides."""
    return [(k, n) for k in KINDS for n in sorted(expected.get(k, {}).keys() | live.get(k, {}).keys())]
