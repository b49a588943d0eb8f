"""Where the project's files live: sql/, migrations/ and the git-ignored var/."""

import os
from pathlib import Path

ROOT = Path(os.environ.get("DBTOOL_ROOT") or Path(__file__).resolve().parents[1])
SQL_DIR = ROOT / "sql"
MIGRATIONS_DIR = ROOT / "migrations"
VAR_DIR = ROOT / "var"

# sql/ folders that are not PostgreSQL schema modules.
NON_MODULE_DIRS = {"duckdb", "seed"}


def modules() -> list[str]:
    """The PostgreSQL schema modules, in a stable order (one migrations/ folder each)."""
    return sorted(p.name for p in MIGRATIONS_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def module_sql_files(module: str) -> list[Path]:
    """The module's DDL files in apply order (NNN_ prefix sorts them)."""
    return sorted((SQL_DIR / module).glob("[0-9][0-9][0-9]_*.sql"))
