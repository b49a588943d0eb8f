"""Checksums of applied sql/ files, so `validate` can report files edited after apply.

yoyo identifies a migration by its id only; we record what each file said when it ran.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ALGORITHM = "sha256-v1"  # v1: UTF-8 BOM stripped, CRLF/CR -> LF, then SHA-256 of the bytes

BOOKKEEPING_DDL = """
CREATE SCHEMA IF NOT EXISTS dbtool;
CREATE TABLE IF NOT EXISTS dbtool.applied_file (
    migration_id text NOT NULL,
    module text NOT NULL,
    file text NOT NULL,
    checksum text NOT NULL,
    algorithm text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, file)
);
-- Checksums are not secret: let read-only roles run `dbtool validate`.
GRANT USAGE ON SCHEMA dbtool TO PUBLIC;
GRANT SELECT ON dbtool.applied_file TO PUBLIC;
"""


def normalise(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def checksum(data: bytes) -> str:
    return hashlib.sha256(normalise(data)).hexdigest()


def file_checksum(path: Path) -> str:
    return checksum(path.read_bytes())
