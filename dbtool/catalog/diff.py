"""Compare an expected catalog with a live one: every missing, extra or different object.

Missing objects are errors. A differing attribute counts as its model field says (error,
warning or info). An extra object is a warning (an error under --strict), except one that
changes what writes or reads do (an extra NOT NULL column without default, CHECK, unique
index, trigger, rule, policy, a table inheriting from an expected one): an error. Health
problems of the live side (INVALID or not-ready indexes, NOT VALID constraints) are errors
wherever found; objects of kinds dbtool does not model are reported as `unmodeled`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .model import BY_KIND, ERROR, INFO, KINDS, WARNING, Catalog, Constraint, Index, Obj

__all__ = ["ERROR", "WARNING", "INFO", "Finding", "diff", "checked_objects"]

WHY = {
    "missing": "sql/ creates it and the application relies on it",
    "extra": "not in sql/: made by hand or by another tool, and kept by nobody",
    "renamed": "the same index under another name: a later migration naming it will not find it",
    "invalid": "a failed CREATE INDEX CONCURRENTLY leaves this; IF NOT EXISTS keeps it: drop and rebuild it",
    "not_ready": "the index is not maintained on writes yet",
    "not_valid": "existing rows were never checked against the constraint",
    "unmodeled": "dbtool does not compare this kind of object: check it by hand",
}

_POSITION_WHY = "INSERT or COPY without a column list writes into the wrong columns"

# Why a differing attribute matters, where the model's field does not say more precisely.
ATTRIBUTE_WHY = {
    "type": "values the application writes may be refused, truncated or compared differently",
    "nullable": "NULLs are accepted or refused where sql/ says otherwise",
    "default": "rows inserted without this column get another value",
    "identity": "ids are generated differently, or inserts that give one are refused",
    "generated": "the stored value is computed differently",
    "definition": "the object does something other than what sql/ says",
    "columns": "the constraint covers other columns",
    "unique": "duplicates are accepted or refused where sql/ says otherwise",
    "owner": "the owner may change anything, and the next migration needs to be the owner",
    "acl": "privileges differ from sql/: who may read, change or use it",
    "labels": "values the application writes may be refused",
    "returns": "callers get another type",
    "source": "the function does something other than what sql/ says",
    "relkind": "another kind of relation stands under this name",
    "comment": "documentation only",
}


@dataclass
class Finding:
    severity: str
    kind: str
    object: str
    problem: str  # missing extra differs renamed invalid not_ready not_valid unmodeled edited file_missing ...
    attribute: str | None = None
    expected: Any = None
    found: Any = None
    detail: str | None = None
    table: str | None = field(default=None, repr=False)
    why: str | None = None

    def message(self) -> str:
        what = f"{self.problem} {self.kind} {self.object}"
        if self.attribute:
            what += f" {self.attribute}"
        lists = isinstance(self.expected, (list, tuple)) and isinstance(self.found, (list, tuple)) \
            and self.kind != "enum"  # an enum keeps its full label lists: order matters there
        if self.problem in ("differs", "renamed") and lists and self.detail:
            return f"{what}: {self.detail}"  # long lists (ACLs, options): only what changed
        if self.problem in ("differs", "renamed"):
            what += f": expected {_show(self.expected)}, found {_show(self.found)}"
        if self.detail:
            what += f" ({self.detail})"
        return what

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("table")
        for key in ("expected", "found"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        d["message"] = self.message()
        return d


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def diff(expected: Catalog, live: Catalog, *, strict: bool = False) -> list[Finding]:
    extra_default = ERROR if strict else WARNING
    findings: list[Finding] = []
    reordered: set[str | None] = set()  # tables with a differing column: only their column order can differ
    missing_parents = expected.objects("table").keys() - live.objects("table").keys()
    extra_parents = live.objects("table").keys() - expected.objects("table").keys()

    for cls in KINDS:
        kind = cls.KIND
        exp, got = expected.objects(kind), live.objects(kind)
        if kind == "unmodeled":
            findings += [Finding(extra_default, kind, key, "unmodeled", detail=getattr(o, "what", None),
                                 table=None, why=WHY["unmodeled"]) for key, o in got.items()]
            continue
        health = kind in ("index", "constraint")  # the kinds whose live objects can be unhealthy
        for key, e in exp.items():
            g = got.get(key)
            # The common case, identical and healthy: the fields live in __dict__, compared at C speed
            # (a catalog of 5,000 tables holds 100,000 objects); the dataclass's == decides otherwise.
            if (g is not None and type(g) is type(e) and (g.__dict__ == e.__dict__ or g == e)
                    and not (health and _unhealthy(g))):
                continue
            if kind == "column" and g is not None:
                reordered.add(g.parent)
            if g is None:
                if e.parent not in missing_parents:  # else implied by the missing table
                    findings.append(Finding(ERROR, kind, key, "missing", table=e.parent, why=WHY["missing"]))
                continue
            findings += _health(g) + _differences(e, g)
        for key in got.keys() - exp.keys():
            g = got[key]
            findings += _health(g)
            if g.parent not in extra_parents:
                severity = g.extra_severity(expected) or extra_default
                findings.append(Finding(severity, kind, key, "extra", table=g.parent, why=WHY["extra"]))
    findings += _moved_columns(expected, live, reordered)
    findings = _without_backing_indexes(findings, live)
    findings = _pair_renamed_indexes(findings, expected, live, strict)
    order = {k: i for i, k in enumerate(BY_KIND)}
    return sorted(findings, key=lambda f: (order[f.kind], f.object, f.attribute or ""))


def _pair_renamed_indexes(findings: list[Finding], expected: Catalog, live: Catalog, strict: bool) -> list[Finding]:
    """A missing and an extra index on one table with the same definition: one index, renamed."""
    exp, got = expected.objects("index"), live.objects("index")
    missing = {f.object: f for f in findings if f.kind == "index" and f.problem == "missing"}
    extra = {f.object: f for f in findings if f.kind == "index" and f.problem == "extra"}
    for key, f in list(missing.items()):
        want = _index_shape(exp[key])
        twin = next((x for x in extra if _index_shape(got[x]) == want), None)
        if twin is None:
            continue
        findings.remove(f)
        findings.remove(extra.pop(twin))
        findings.append(Finding(ERROR if strict else WARNING, "index", key, "renamed", "name",
                                exp[key].name, got[twin].name, detail="same definition under another name",
                                table=f.table, why=WHY["renamed"]))
    return findings


def _index_shape(ix: Obj) -> tuple:
    assert isinstance(ix, Index)
    return ix.schema, ix.table, ix.definition, ix.unique


def _without_backing_indexes(findings: list[Finding], live: Catalog) -> list[Finding]:
    """An extra unique or exclusion constraint is reported once: not again as the index behind it."""
    extra_constraints = {f.object for f in findings if f.kind == "constraint" and f.problem == "extra"}

    def backs_extra_constraint(f: Finding) -> bool:
        ix = live.objects("index").get(f.object)
        return (f.kind == "index" and f.problem == "extra" and isinstance(ix, Index) and ix.constraint is not None
                and f"{ix.schema}.{ix.table}.{ix.constraint}" in extra_constraints)

    return [f for f in findings if not backs_extra_constraint(f)]


def _moved_columns(expected: Catalog, live: Catalog, tables: set[str | None]) -> list[Finding]:
    """Columns whose order among the columns both sides have differs: only those that moved.

    A missing or extra column shifts every later ordinal position, which is no move; the columns
    outside the longest run kept in order (longest increasing subsequence) are the moved ones.
    Only `tables` are looked at: where every column both sides have is identical, position
    included, nothing moved.
    """
    out = []
    for key, table in expected.objects("table").items():
        if key not in tables or key not in live.objects("table"):
            continue
        exp = {c.name: c for c in expected.columns(table.schema, table.name)}
        got = {c.name: c for c in live.columns(table.schema, table.name)}
        order = [n for n in exp if n in got]  # expected order
        live_order = sorted(order, key=lambda n: got[n].position)
        if live_order == order:
            continue  # the common case: nothing moved
        rank = {n: i for i, n in enumerate(live_order)}
        kept = _increasing_run([rank[n] for n in order])
        for i, name in enumerate(order):
            if i not in kept:
                e, g = exp[name], got[name]
                out.append(Finding(WARNING, "column", e.key, "differs", "position", e.position, g.position,
                                   detail="moved", table=e.parent, why=_POSITION_WHY))
    return out


def _increasing_run(values: list[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence of values (O(n^2): tables are small).

    Of equally long ones, the one ending lowest: a column dropped and added again (now last) is
    the one reported as moved, not its former neighbour.
    """
    def rank(run: list[int]) -> tuple[int, int]:
        return len(run), -values[run[-1]] if run else 0

    best: list[list[int]] = []
    for i, v in enumerate(values):
        before = [best[j] for j in range(i) if values[j] < v]
        best.append((max(before, key=rank) if before else []) + [i])
    if not best:
        return set()
    longest: list[int] = max(best, key=rank)
    return set(longest)


def _differences(e: Obj, g: Obj) -> list[Finding]:
    out = []
    for f in e.compared():
        if f.name == "position":  # order is judged among the columns both sides have: _moved_columns
            continue
        want, have = getattr(e, f.name), getattr(g, f.name)
        if want != have:
            detail: str | None
            if e.KIND == "enum" and f.name == "labels":
                detail = _enum_detail(want, have)
            elif isinstance(want, tuple) and isinstance(have, tuple):
                detail = _set_detail(want, have)
            else:
                detail = None
            out.append(Finding(f.metadata["severity"], e.KIND, e.key, "differs", f.name, want, have,
                               detail=detail, table=e.parent,
                               why=f.metadata.get("why") or ATTRIBUTE_WHY.get(f.name)))
    return out


def _unhealthy(o: Obj | None) -> bool:
    return (isinstance(o, Index) and not (o.valid and o.ready)) or (isinstance(o, Constraint) and not o.validated)


def _health(o: Obj) -> list[Finding]:
    out = []
    if isinstance(o, Index) and not o.valid:
        out.append(Finding(ERROR, "index", o.key, "invalid", detail=WHY["invalid"], table=o.parent,
                           why=WHY["invalid"]))
    elif isinstance(o, Index) and not o.ready:
        out.append(Finding(ERROR, "index", o.key, "not_ready", table=o.parent, why=WHY["not_ready"]))
    if isinstance(o, Constraint) and not o.validated:
        out.append(Finding(ERROR, "constraint", o.key, "not_valid",
                           detail="created NOT VALID and never validated: existing rows are unchecked",
                           table=o.parent, why=WHY["not_valid"]))
    return out


def _enum_detail(want: tuple, have: tuple) -> str:
    parts = []
    if missing := [x for x in want if x not in have]:
        parts.append("missing labels " + ", ".join(missing))
    if extra := [x for x in have if x not in want]:
        parts.append("extra labels " + ", ".join(extra))
    if not parts:
        parts.append("label order differs")
    return "; ".join(parts)


def _set_detail(want: tuple, have: tuple) -> str | None:
    """For lists such as ACLs and options: what was added and removed (None when only the order differs)."""
    added = [x for x in have if x not in want]
    removed = [x for x in want if x not in have]
    parts = ([f"added {', '.join(map(str, added))}"] if added else []) + (
        [f"removed {', '.join(map(str, removed))}"] if removed else [])
    return "; ".join(parts) or None


def checked_objects(expected: Catalog, live: Catalog) -> list[tuple[str, str]]:
    """Every (kind, name) looked at: the union of both sides."""
    return [(k, n) for k in BY_KIND for n in sorted(expected.objects(k).keys() | live.objects(k).keys())]
