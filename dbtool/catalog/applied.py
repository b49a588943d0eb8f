"""Applied migrations against the files on disk: edited, missing, pending.

Reads dbtool.applied_file (granted to PUBLIC at creation, so a read-only role can
validate) and compares each recorded checksum with the file as it is now.
"""

from __future__ import annotations

import psycopg

from .. import paths
from ..fingerprint import ALGORITHM, file_checksum
from .diff import ERROR, INFO, WARNING, Finding

APPLIED_SQL = """
SELECT migration_id, module, file, checksum, algorithm, applied_at
FROM dbtool.applied_file WHERE module = ANY(%s) ORDER BY migration_id, file
"""


def check_applied(conn: psycopg.Connection, modules: list[str], migration_ids: dict[str, list[str]]) -> list[Finding]:
    """migration_ids: {module: [ids of the migrations on disk]}."""
    if not conn.execute("SELECT to_regclass('dbtool.applied_file')").fetchone()[0]:
        rows = []
    else:
        try:
            with conn.transaction():
                rows = conn.execute(APPLIED_SQL, (modules,)).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            return [Finding(WARNING, "migration", "dbtool.applied_file", "unreadable",
                            detail="permission denied: applied files cannot be checked")]
    findings = []
    applied_ids: dict[str, str] = {}
    for mid, module, file, recorded, algorithm, _when in rows:
        applied_ids[mid] = module
        path = paths.SQL_DIR / file
        name = f"sql/{file}"
        if not path.exists():
            findings.append(Finding(ERROR, "file", name, "file_missing", detail=f"applied by {mid}"))
        elif algorithm != ALGORITHM:
            findings.append(Finding(INFO, "file", name, "unchecked", detail=f"recorded with {algorithm}"))
        elif file_checksum(path) != recorded:
            findings.append(Finding(ERROR, "file", name, "edited",
                                    detail=f"changed on disk after {mid} applied it; add a new file instead"))
    for module in modules:
        on_disk = set(migration_ids.get(module, []))
        for mid in sorted(m for m, mod in applied_ids.items() if mod == module and m not in on_disk):
            findings.append(Finding(ERROR, "migration", mid, "file_missing",
                                    detail="applied to this database but its migration is not on disk"))
        for mid in sorted(on_disk - applied_ids.keys()):
            findings.append(Finding(WARNING, "migration", mid, "pending"))
    return findings
