"""`-- dbtool: ignore <rule>[, <rule>]: <reason>` waives those rules for one statement.

The comment belongs to the statement it sits in or above (after the previous statement's `;`), or to
the statement it trails on the same line (`...; -- dbtool: ignore ...`). The reason is mandatory: an
ignore without one waives nothing and is a finding itself; so is one naming an unknown rule, and one
that waives nothing (its statement does not break that rule). Meta rules cannot be waived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .checks import Finding
from .parse import Comment, SourceFile
from .rules import META, RULES

DBTOOL_COMMENT = re.compile(r"^--\s*dbtool\s*:\s*(.*?)\s*$", re.I)
IGNORE = re.compile(r"^ignore\s+([A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)\s*(?::\s*(.*))?$", re.I | re.S)


@dataclass
class Ignore:
    line: int
    column: int
    rules: tuple[str, ...]
    reason: str | None
    statement: int | None
    used: set[str] = field(default_factory=set)


def statement_of(src: SourceFile, comment: Comment) -> int | None:
    """The top-level statement a comment belongs to (None: after the last one)."""
    for i, (start, end) in enumerate(zip(src.starts, src.ends)):
        if start <= comment.offset < end:
            return i
        if comment.offset < start:
            if i > 0 and src.line_of(max(src.ends[i - 1] - 1, 0))[0] == comment.line:
                return i - 1  # trails the previous statement on its last line
            return i
    if src.ends and src.line_of(max(src.ends[-1] - 1, 0))[0] == comment.line:
        return len(src.ends) - 1
    return None


def collect(src: SourceFile) -> tuple[list[Ignore], list[Finding]]:
    """The file's ignore comments, and findings for `-- dbtool:` comments that are not ignores. A reason may
    go on over the comment lines right below its ignore (at the same column)."""
    ignores: list[Ignore] = []
    bad: list[Finding] = []
    open_reason: tuple[Ignore, int] | None = None  # an ignore whose reason may continue, and its last line
    for c in src.comments:
        m = DBTOOL_COMMENT.match(c.text)
        if not m:
            if open_reason and c.line == open_reason[1] + 1 and c.column == open_reason[0].column:
                more = c.text[2:].strip()
                ig = open_reason[0]
                ig.reason = f"{ig.reason} {more}".strip() if ig.reason else (more or None)
                open_reason = (ig, c.line)
            else:
                open_reason = None
            continue
        open_reason = None
        spec = IGNORE.match(m.group(1))
        if not spec:
            bad.append(Finding(src.path, src.shown, c.line, c.column, "bad-dbtool-comment",
                               f"`{c.text.strip()}` is not `-- dbtool: ignore <rule>: <reason>`", None))
            continue
        rules = tuple(r.strip().lower() for r in spec.group(1).split(","))
        reason = (spec.group(2) or "").strip() or None
        ignores.append(Ignore(c.line, c.column, rules, reason, statement_of(src, c)))
        if spec.group(2) is not None:  # `ignore x: ...`: the lines below may go on with the reason
            open_reason = (ignores[-1], c.line)
    return ignores, bad


def apply(src: SourceFile, findings: list[Finding], enabled: set[str]) -> tuple[list[Finding], list[Finding]]:
    """(findings that stand, findings waived with their reason) of one file, ignore problems included."""
    ignores, standing = collect(src)
    waived = []
    for f in findings:
        ig = None if RULES[f.rule].group == META else next(
            (i for i in ignores if i.reason and i.statement == f.statement and f.rule in i.rules), None)
        if ig is None:
            standing.append(f)
        else:
            ig.used.add(f.rule)
            waived.append(replace(f, reason=ig.reason))
    for ig in ignores:
        where = (src.path, src.shown, ig.line, ig.column)
        if ig.reason is None:
            standing.append(Finding(*where, "ignore-without-reason",
                                    f"ignore {', '.join(ig.rules)} has no reason: it waives nothing (write "
                                    f"`-- dbtool: ignore {ig.rules[0]}: <why it is safe here>`)", ig.statement))
            continue
        for rule in ig.rules:
            if rule not in RULES:
                standing.append(Finding(*where, "ignore-unknown-rule", f"no rule {rule!r} to ignore", ig.statement))
            elif RULES[rule].group == META:
                standing.append(Finding(*where, "ignore-unknown-rule", f"{rule} cannot be ignored", ig.statement))
            elif rule in enabled and rule not in ig.used:
                target = "no statement (it is after the last one)" if ig.statement is None else \
                    f"the statement at line {src.statements[ig.statement].line}"
                standing.append(Finding(*where, "ignore-unused", f"ignore {rule} waives nothing: {target} does not "
                                                                 "break it", ig.statement))
    return standing, waived
