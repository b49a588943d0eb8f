"""Every DBTOOL_* setting in one place: read lazily (never at import), validated, one-line errors.

A command line option, when a command has one, wins (the CLI records it with `override`);
then the environment; then the default. A bad value is a usage error (exit 2) naming the
variable. The README's settings table and each option's `--help` come from SETTINGS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"give a whole number (at least {minimum})") from None
        if value < minimum:
            raise ValueError(f"give a whole number of at least {minimum}")
        return value

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("give a number of seconds") from None
    if not 0 < value <= 2_147_483:  # nan and inf fail this too; PostgreSQL's limit is 2^31-1 ms
        raise ValueError("give a number of seconds above 0 (at most 2147483)")
    return value


def _flag(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("give 1 or 0")


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _text(raw: str) -> str:
    return raw.strip()  # never refused here: a URL is checked (and masked) where it is used


def _workers(raw: str) -> int:
    value = _whole(1)(raw)
    if value > MAX_PARALLEL:
        raise ValueError(f"give a whole number from 1 to {MAX_PARALLEL}")
    return value


# Fleet runs (--targets): how many targets at once. Each migrating target holds up to 3 connections (the lock's,
# yoyo's, one per migration), so 8 keep a shared server at 24 of PostgreSQL's default 100; the client side is
# mostly waiting on servers, but validate's diff holds the GIL, so beyond ~2 threads per core they only queue.
MAX_PARALLEL = 256
DEFAULT_PARALLEL = min(8, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Setting:
    name: str               # the environment variable
    parse: Callable[[str], Any]
    default: Any            # used when the variable is unset or empty
    help: str
    used_by: str            # which commands (for the README table)

    def describe_default(self) -> str:
        return "(see help)" if self.default is None else str(self.default)


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("DBTOOL_ROOT", _path, None,
            "the checkout holding sql/ and migrations/ (default: the one dbtool was installed from)", "all"),
    Setting("DBTOOL_CONNECT_TIMEOUT", _whole(1), 10, "seconds to wait for a PostgreSQL connection",
            "every command that connects"),
    Setting("DBTOOL_DEVDB_DIR", _path, None, "where the local cluster lives (default: var/pg of the checkout)",
            "devdb, and every command when no database is configured"),
    Setting("PG_BINDIR", _path, None, "the PostgreSQL server binaries for the local cluster "
            "(default: the newest /usr/lib/postgresql/*/bin, then pg_config --bindir)", "devdb, make migrate, tests"),
    Setting("DBTOOL_DUCKDB_PATH", _path, None, "the DuckDB analytics file (default: var/analytics.duckdb)",
            "analytics, validate --duckdb, erase-user, jobs purge"),
    Setting("DBTOOL_POOL_MIN", _whole(0), 20, "connections a pool keeps open", "library: dbtool.pool"),
    Setting("DBTOOL_POOL_MAX", _whole(1), 60, "connections a pool may open (20 + 40 overflow)",
            "library: dbtool.pool"),
    Setting("DBTOOL_STATS_EXACT_MAX_BYTES", _whole(0), 64 * 1024 * 1024,
            "tables whose heap is smaller are counted exactly; bigger ones are estimated", "stats"),
    Setting("DBTOOL_READ_LOCK_TIMEOUT", _seconds, 10.0,
            "seconds a read-only command waits for a table lock, then names who holds it",
            "validate, stats, smoke, status"),
    Setting("DBTOOL_DATA_LOCK_TIMEOUT", _seconds, 10.0,
            "seconds a command reading or changing rows waits for a table lock, then stops naming who holds it "
            "(nothing changed)",
            "backup, restore, seed, erase-user, analytics sync, jobs"),
    Setting("DBTOOL_TARGETS", _path, None,
            "a file naming the databases to act on, one URL or service=NAME per line, each with an optional label "
            "(README: Many databases)", "migrate, validate, status, wait"),
    Setting("DBTOOL_REGISTRY_URL", _text, None,
            "the database --targets-query reads the targets from (default: the --database-url)",
            "migrate, validate, status, wait"),
    Setting("DBTOOL_PARALLEL", _workers, DEFAULT_PARALLEL,
            "targets acted on at once, each in a worker thread of one process", "migrate, validate, status, wait"),
    Setting("DBTOOL_PROGRESS", _flag, True, "live progress lines on a terminal (0 turns them off)",
            "migrate, analytics sync, runs over --targets"),
    Setting("DBTOOL_LOCK_RETRIES", _whole(0), 0,
            "times a migration that failed on lock_timeout is tried again, after a growing, jittered pause "
            "(0: fail at once, naming the blocker)", "migrate"),
)}

# Defaults of the migration options (--lock-timeout, --ddl-lock-timeout, --statement-timeout).
DEFAULT_LOCK_TIMEOUT = 60.0          # waiting for another dbtool run
DEFAULT_DDL_LOCK_TIMEOUT = "10s"     # a migration waiting for a table lock
DEFAULT_STATEMENT_TIMEOUT = "15min"  # one statement of a migration

_overrides: dict[str, Any] = {}


def get(name: str) -> Any:
    """The setting's value: an override from the command line, else the environment, else the default."""
    setting = SETTINGS[name]
    if name in _overrides:
        return _overrides[name]
    raw = os.environ.get(name, "")
    if raw == "":
        return setting.default
    return parse(setting, raw)


def parse(setting: Setting, raw: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise UsageError(f"{setting.name}={raw!r}: {exc}") from None


def override(name: str, value: Any) -> None:
    """Record a value given on the command line (None: not given, keep the environment's)."""
    if value is not None:
        _overrides[name] = value


def clear_overrides() -> None:
    _overrides.clear()
