"""What this database says was applied: yoyo's records and dbtool's file checksums.

`status` and `validate` both read it here, so they never disagree on what is pending or
which files changed since they were applied. Read-only; a table this role may not read
counts as unreadable, not as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from . import paths
from .fetch import fetch_one
from .fingerprint import ALGORITHM, KNOWN, file_checksum

YOYO_SQL = "SELECT migration_id, applied_at_utc FROM _yoyo_migration"
FILES_SQL = "SELECT migration_id, module, file, checksum, algorithm FROM dbtool.applied_file ORDER BY 1, 3"


@dataclass
class FileRecord:
    migration_id: str
    module: str
    file: str  # relative to sql/
    checksum: str
    algorithm: str

    @property
    def problem(self) -> str | None:
        """'file_missing', 'edited', 'unchecked' or None when the file is as applied.

        A record of an older algorithm is checked with that algorithm: equal means unchanged. v1
        counted comments, so a v1 mismatch may be a comment edit only: 'unchecked', not 'edited'.
        """
        path = paths.sql_dir() / self.file
        if not path.is_file():  # gone, or a FIFO or folder in its place (reading a FIFO would wait forever)
            return "file_missing"
        if self.algorithm not in KNOWN:
            return "unchecked"
        if file_checksum(path, self.algorithm) == self.checksum:
            return None
        return "edited" if self.algorithm == ALGORITHM else "unchecked"


@dataclass
class History:
    applied: dict[str, datetime | None] = field(default_factory=dict)  # migration id -> when (None: unknown)
    files: list[FileRecord] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def changed_files(self, migration_id: str) -> list[str]:
        return [f"sql/{r.file}" for r in self.files
                if r.migration_id == migration_id and r.problem in ("file_missing", "edited")]


def read_history(conn: psycopg.Connection) -> History:
    history = History()
    for table, query in (("_yoyo_migration", YOYO_SQL), ("dbtool.applied_file", FILES_SQL)):
        if not fetch_one(conn.execute("SELECT to_regclass(%s)", (table,)))[0]:
            continue
        try:
            with conn.transaction():
                rows = conn.execute(query).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            history.unreadable.append(table)
            continue
        if table == "_yoyo_migration":
            history.applied.update(rows)
        else:
            history.files = [FileRecord(*r) for r in rows]
    for r in history.files:  # a database whose yoyo records this role cannot read
        history.applied.setdefault(r.migration_id, None)
    return history
