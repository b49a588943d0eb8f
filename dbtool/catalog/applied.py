"""Applied migrations against the files on disk, as validate findings: edited, missing, pending.

The records come from dbtool.history (yoyo's table and dbtool.applied_file, both granted to
PUBLIC by migrate, so a read-only role can validate).
"""

from __future__ import annotations

import psycopg

from ..history import read_history
from .diff import ERROR, INFO, WARNING, Finding

DETAIL = {
    "edited": "changed on disk after {mid} applied it; add a new file instead",
    "file_missing": "applied by {mid}",
    "unchecked": "recorded by {mid} with an older checksum algorithm that counted comments; it no longer"
                 " matches, perhaps only a comment changed",
}


def check_applied(conn: psycopg.Connection, modules: list[str], migration_ids: dict[str, list[str]]) -> list[Finding]:
    """migration_ids: {module: [ids of the migrations on disk]}."""
    history = read_history(conn)
    findings = [Finding(WARNING, "migration", table, "unreadable",
                        detail="permission denied: applied migrations cannot be checked")
                for table in history.unreadable]
    for record in history.files:
        problem = record.problem
        if record.module in modules and problem:
            findings.append(Finding(INFO if problem == "unchecked" else ERROR, "file", f"sql/{record.file}",
                                    problem, detail=DETAIL[problem].format(mid=record.migration_id)))
    on_disk = {mid for m in modules for mid in migration_ids.get(m, [])}
    for mid in sorted(history.applied):
        if mid.split("_", 1)[0] in modules and mid not in on_disk:
            findings.append(Finding(ERROR, "migration", mid, "file_missing",
                                    detail="applied to this database but its migration is not on disk"))
    if not history.unreadable:
        findings += [Finding(WARNING, "migration", mid, "pending") for mid in sorted(on_disk - history.applied.keys())]
    return findings
