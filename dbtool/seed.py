"""Demo rows: sql/seed/<module>.sql adds them (idempotent), sql/seed/<module>.clear.sql removes exactly them.

Both are plain SQL files that psql runs as they are (`psql -X -1 -v ON_ERROR_STOP=1 -f ...`); here each
runs in one transaction over the library's connection, so a failing file changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from . import paths
from .errors import DbtoolError, first_line


class SeedError(DbtoolError):
    """A seed file failed; the database was left as it was."""


def seed_file(module: str, *, clear: bool = False) -> Path:
    return paths.sql_dir() / "seed" / f"{module}{'.clear' if clear else ''}.sql"


def apply(conn: psycopg.Connection, module: str, *, clear: bool = False) -> Path:
    """Run the module's seed (or clear) file in one transaction."""
    path = seed_file(module, clear=clear)
    if not path.exists():
        raise SeedError(f"no seed file {path}")
    try:
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))  # no parameters: the file may hold many statements
    except psycopg.errors.UndefinedTable as exc:
        raise SeedError(f"{path.name}: {first_line(exc)} (is the {module} module migrated? run `dbtool migrate`)") \
            from None
    except psycopg.Error as exc:
        raise SeedError(f"{path.name}: {first_line(exc)}; nothing changed", sqlstate=exc.sqlstate) from None
    return path
