"""A trace as text (a table per migration) or JSON (format dbtool.trace/1)."""

from __future__ import annotations

import json

from .model import MigrationTrace, StatementTrace, Trace

JSON_FORMAT = "dbtool.trace/1"
SQL_WIDTH = 60
HEADERS = ("statement", "seconds", "locks (mode relation)", "rewritten", "constraints", "sql")


def as_json(trace: Trace) -> str:
    return json.dumps(trace.as_dict(), indent=2, ensure_ascii=False) + "\n"


def _short(text: str, width: int = SQL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _lock_lines(s: StatementTrace) -> list[str]:
    """One line per lock, indexes folded: into their table's line when the table is locked in the same mode by
    the same statement, else one line per mode and table ("N indexes of t")."""
    own = {(x.mode, x.relation) for x in s.locks if x.kind != "index"}
    groups: dict[tuple[str, str], list[str]] = {}
    for x in s.locks:
        if x.kind == "index" and x.table:
            groups.setdefault((x.mode, x.table), []).append(x.relation)
    out, done = [], set()
    for x in s.locks:
        if x.kind == "index" and x.table:
            key = (x.mode, x.table)
            if key in own or key in done:
                continue
            done.add(key)
            n = len(groups[key])
            out.append(f"{x.mode} {x.relation} (index)" if n == 1 else f"{x.mode} {n} indexes of {x.table}")
            continue
        n = len(groups.get((x.mode, x.relation), [])) if x.kind != "index" else 0
        out.append(f"{x.mode} {x.relation}" + ("" if x.kind == "table" else f" ({x.kind})")
                   + (f" + {n} index(es)" if n else ""))
    if s.observed == "sampled" and out:
        out[-1] += "  [sampled]"
    return out


def _cells(s: StatementTrace) -> list[list[str]]:
    """The statement's columns, each a list of lines."""
    tables = {r.name for r in s.rewritten if r.kind != "index"}
    rewritten = [f"{r.name}" + (f" + {n} index(es)" if (n := sum(1 for i in s.rewritten if i.table == r.name)) else "")
                 + ("" if r.kind == "table" else f" ({r.kind})")
                 for r in s.rewritten if not (r.kind == "index" and r.table in tables)]
    constraints = [f"{c.name} {c.change}" + ("" if c.change == "dropped" else " VALID" if c.validated
                                             else " NOT VALID") for c in s.constraints]
    sql = [_short(s.sql)]
    if s.batches:
        b = s.batches
        sql.append(f"(-- batch: {b.size}: {b.count} batch(es), {b.rows} row(s), each its own transaction, longest "
                   f"{b.longest_seconds:.3f}s)")
    return [[s.where], [f"{s.seconds:.3f}"], _lock_lines(s) or ["-"], rewritten or ["-"], constraints or ["-"], sql]


def _holds(m: MigrationTrace) -> list[str]:
    """ACCESS EXCLUSIVE on existing relations; an index's folded into its table's line when the table is held too."""
    shared = [h for h in m.holds if not h.created_here]
    tables = {h.relation for h in shared if h.kind != "index"}
    folded: dict[str, int] = {}
    for h in shared:
        if h.kind == "index" and h.table in tables:
            folded[h.table] = folded.get(h.table, 0) + 1
    shown = [h for h in shared if not (h.kind == "index" and h.table in tables)]
    lines = []
    if m.transactional:
        for h in shown:
            n = folded.get(h.relation, 0)
            what = h.relation + (f" ({h.kind})" if h.kind != "table" else "")
            what += f" (and {n} of its indexes)" if n else ""
            lines.append(f"  ACCESS EXCLUSIVE on {what} held {h.seconds:.3f}s: from {h.since} to commit"
                         + (f", across {h.statements} statement(s)" if h.statements > 1 else ""))
        return lines
    by_rel: dict[str, list] = {}
    for h in shown:
        by_rel.setdefault(h.relation + (f" ({h.kind})" if h.kind != "table" else ""), []).append(h)
    for rel, hs in sorted(by_rel.items(), key=lambda kv: -max(h.seconds for h in kv[1])):
        longest = max(hs, key=lambda h: h.seconds)
        if len(hs) == 1:
            lines.append(f"  ACCESS EXCLUSIVE on {rel} held {longest.seconds:.3f}s: by {longest.since}, in its own "
                         "transaction")
        else:
            lines.append(f"  ACCESS EXCLUSIVE on {rel} taken by {len(hs)} statements, each in its own transaction: "
                         f"longest {longest.seconds:.3f}s ({longest.since})")
    return lines


def _table(rows: list[list[list[str]]]) -> list[str]:
    widths = [max(len(h), *(len(line) for r in rows for line in r[i])) for i, h in enumerate(HEADERS)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip()]
    for r in rows:
        for k in range(max(len(c) for c in r)):
            cells = [c[k] if k < len(c) else "" for c in r]
            out.append("  " + "  ".join(c.rjust(w) if i == 1 else c.ljust(w)
                                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    return out


def _migration(m: MigrationTrace) -> list[str]:
    shape = "one transaction" if m.transactional else "not transactional: each statement on its own"
    head = f"{m.id} ({shape}; {len(m.statements)} statement(s), {m.seconds:.3f}s)"
    lines = [head + (f"  [{m.note}]" if m.note else "")]
    if m.statements:
        lines += _table([_cells(s) for s in m.statements])
    if m.transactional and m.statements:
        lines.append(f"  COMMIT {m.commit_seconds:.3f}s")
    shared = _holds(m)
    lines += shared
    new = [h.relation for h in m.holds if h.created_here and h.kind != "index"]
    if new:
        lines.append(f"  ACCESS EXCLUSIVE also on {len(new)} relation(s) this migration creates (nobody else sees "
                     f"them before commit): {', '.join(new[:5])}{' ...' if len(new) > 5 else ''}")
    if not shared:
        lines.append("  no ACCESS EXCLUSIVE lock on an existing relation")
    return lines


def text(trace: Trace) -> str:
    lines: list[str] = []
    for m in trace.migrations:
        lines += _migration(m) + [""]
    n = sum(len(m.statements) for m in trace.migrations)
    rewrites = [r for m in trace.migrations for s in m.statements for r in s.rewritten]
    tables = sum(1 for r in rewrites if r.kind != "index")
    exclusive = sum(1 for m in trace.migrations for h in m.holds if not h.created_here and h.kind != "index")
    if trace.copy is None:
        lines.append("trace: nothing to trace")
    else:
        rows = f", {trace.copy.rows} generated row(s) per table" if trace.copy.rows else ", no rows (--rows N fills)"
        lines.append(f"trace: {n} statement(s) of {len(trace.migrations)} migration(s) on scratch copy "
                     f"{trace.copy.name}{rows}; rewrote {tables} table(s) and {len(rewrites) - tables} index(es); "
                     f"{exclusive} ACCESS EXCLUSIVE hold(s) on existing tables; {trace.seconds:.2f}s; copy dropped")
    return "\n".join(lines) + "\n"
