"""Where the project's files live: sql/, migrations/ and the git-ignored var/.

Resolved at use, not at import: DBTOOL_ROOT may point elsewhere (tests, a non-editable
install), and a wrong one is one line saying how to fix it, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

from . import settings
from .errors import UsageError

# sql/ folders that are not PostgreSQL schema modules.
NON_MODULE_DIRS = {"duckdb", "seed"}
_INSTALLED_FROM = Path(__file__).resolve().parents[1]


def root() -> Path:
    """The checkout holding sql/ and migrations/: DBTOOL_ROOT, else the one this package sits in."""
    given = settings.get("DBTOOL_ROOT")
    base = Path(given).resolve() if given else _INSTALLED_FROM
    if not ((base / "sql").is_dir() and (base / "migrations").is_dir()):
        where = f"DBTOOL_ROOT={given}" if given else f"dbtool's install folder {base}"
        raise UsageError(f"no sql/ and migrations/ under {where}: run dbtool from a checkout "
                         "(pip install -e .) or set DBTOOL_ROOT to the checkout's folder")
    return base


def sql_dir() -> Path:
    return root() / "sql"


def migrations_dir() -> Path:
    return root() / "migrations"


def var_dir() -> Path:
    return root() / "var"


def modules() -> list[str]:
    """The PostgreSQL schema modules, in a stable order (one migrations/ folder each)."""
    return sorted(p.name for p in migrations_dir().iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def check_modules(requested: tuple[str, ...] | list[str] | None) -> list[str]:
    """The requested modules in apply order (all when none are named); an unknown one is a usage error."""
    known = modules()
    if not requested:
        return known
    unknown = [m for m in requested if m not in known]
    if unknown:
        raise UsageError(f"unknown module {', '.join(unknown)} (known: {', '.join(known)})")
    return [m for m in known if m in requested]


def module_sql_files(module: str) -> list[Path]:
    """The module's DDL files in apply order (NNN_ prefix sorts them)."""
    return sorted((sql_dir() / module).glob("[0-9][0-9][0-9]_*.sql"))


def __getattr__(name: str) -> Path:
    """ROOT, SQL_DIR, MIGRATIONS_DIR, VAR_DIR as attributes, resolved at each access (tests use them)."""
    getters = {"ROOT": root, "SQL_DIR": sql_dir, "MIGRATIONS_DIR": migrations_dir, "VAR_DIR": var_dir}
    if name in getters:
        return getters[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
