"""Erasure of one user's rows from DuckDB (LGPD), called next to the chatbot user erasure in PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .db import connect, default_path, duck_error, transaction
from .embeddings import bump_version
from .sync import forget_baseline

if TYPE_CHECKING:
    import psycopg

    from ..repo.chatbot.users import ErasedUser, Eraser

TABLES = ("message_history", "conversation_context", "message_embeddings")


def erase_phone(duck_conn: duckdb.DuckDBPyConnection, phone_number: str) -> dict[str, int]:
    """Delete every row of phone_number from the three tables in one transaction; rows deleted per table.

    The search sidecar (`<file>.embeddings`) is rewritten without the user's vectors, or removed, before the
    transaction commits (embeddings.bump_version). The next sync compares every row with PostgreSQL (the
    sync baseline is dropped: DuckDB's rows changed outside a sync).
    Erase in PostgreSQL first (or in the same maintenance window): a sync that runs in between would copy
    the user's rows back from PostgreSQL.
    """
    try:
        with transaction(duck_conn):
            counts = {t: duck_conn.execute(f"DELETE FROM {t} WHERE phone_number = ?",
                                           [phone_number]).fetchall()[0][0]
                      for t in TABLES}  # table names are our constants
            if counts["message_embeddings"]:
                bump_version(duck_conn, deleted_only=True)  # the search sidecar loses the user's vectors
            if any(counts.values()):
                forget_baseline(duck_conn)
    except duckdb.Error as exc:
        raise duck_error("DuckDB erasure failed, nothing erased", exc) from None
    return counts


def open_store(path: str | Path | None, *, skip: bool = False) -> tuple[duckdb.DuckDBPyConnection | None, str]:
    """The DuckDB analytics file an erasure must reach, open, and a line saying which (or why none).

    path None means the configured one (DBTOOL_DUCKDB_PATH, else var/analytics.duckdb): erased when it
    exists, since every sync copied the user's rows there. A file that exists but cannot be opened (locked
    by another process, damaged) is an AnalyticsError, raised before anything is erased anywhere.
    """
    target = Path(path) if path else default_path()
    if skip:
        return None, f"DuckDB: not erased (--no-duckdb); rows synced to {target} stay there"
    if not target.exists() and not target.is_symlink():
        return None, f"DuckDB: no DuckDB analytics file at {target}, nothing to erase there"
    return connect(target, create=False), f"DuckDB: {target}"


def duckdb_eraser(duck_conn: duckdb.DuckDBPyConnection) -> Eraser:
    """An eraser for dbtool.repo.chatbot.users.erase: runs inside its PostgreSQL transaction, so a DuckDB
    failure leaves PostgreSQL untouched; counts come back as duckdb.<table>."""

    def erase(_pg_conn: psycopg.Connection, user: ErasedUser) -> dict[str, int]:
        return {f"duckdb.{t}": n for t, n in erase_phone(duck_conn, user.phone_number).items()}

    return erase
