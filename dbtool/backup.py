"""Backup and restore of the configured database with pg_dump -Fc / pg_restore.

The connection goes to the tools as `--dbname=<conninfo>` without the password, which
travels in PGPASSWORD (never on a command line that `ps` or an error message shows).
The tools come from the server's own major version when installed side by side
(/usr/lib/postgresql/<major>/bin), else dbtool.devdb.bindir(), else PATH: pg_dump
refuses a server newer than itself.

Restore refuses a database that already holds tables unless forced (then it drops what
the archive re-creates: --clean --if-exists), and runs in one transaction: a restore
that fails half-way leaves the target as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from psycopg.conninfo import make_conninfo

from . import devdb, paths
from .config import Target
from .errors import DbtoolError, UsageError

USER_TABLES_SQL = """
    SELECT n.nspname || '.' || c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
    ORDER BY 1
    LIMIT %(limit)s"""


class RestoreRefused(DbtoolError):
    """The target database is not empty and --force was not given (exit 1)."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    seconds: float
    bytes: int


def tool(name: str, *, server_major: int) -> str:
    """Path of pg_dump / pg_restore able to handle a server of this major version."""
    candidates = [Path(f"/usr/lib/postgresql/{server_major}/bin") / name]
    try:
        candidates.append(devdb.bindir() / name)
    except DbtoolError:
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.exists() and _major(path) >= server_major:
            return str(path)
    found = ", ".join(f"{p} ({_major(p)})" for p in candidates if p.exists()) or "none"
    raise DbtoolError(f"no {name} for PostgreSQL {server_major} or newer (found: {found}); "
                      f"install postgresql-client-{server_major} or set PG_BINDIR")


def _major(path: Path) -> int:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def _libpq_args(target: Target, dbname: str) -> tuple[list[str], dict[str, str]]:
    """(--dbname argument without the password, environment carrying it).

    Under the PG* environment the conninfo is empty and libpq reads the variables; the
    explicit dbname keeps pg_restore from printing a script instead of restoring.
    """
    env = dict(os.environ)
    params = target.params or {"dbname": dbname}
    password = params.pop("password", None) or target.password
    if password:
        env["PGPASSWORD"] = password
    return [f"--dbname={make_conninfo(**params)}"], env


def _run(target: Target, cmd: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else f"exit {proc.returncode}")
        raise DbtoolError(target.mask(f"{what} failed: {detail.strip()}"))


def _server(target: Target) -> tuple[str, int]:
    with target.connect(application_name="dbtool backup") as conn:
        return conn.info.dbname, conn.info.server_version // 10000


def default_path(dbname: str, *, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return paths.var_dir() / "backups" / f"{dbname}-{stamp}.dump"


def backup(target: Target, *, out: Path | None = None) -> Outcome:
    """pg_dump -Fc of the whole database to `out` (default var/backups/<db>-<UTC time>.dump)."""
    started = time.monotonic()
    dbname, major = _server(target)
    path = Path(out) if out else default_path(dbname)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # a failed dump never looks like a backup
    args, env = _libpq_args(target, dbname)
    try:
        _run(target, [tool("pg_dump", server_major=major), "--format=custom", f"--file={partial}", *args],
             env, "pg_dump")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return Outcome(path, time.monotonic() - started, path.stat().st_size)


def user_tables(target: Target, *, limit: int = 5) -> list[str]:
    with target.connect(application_name="dbtool restore") as conn:
        return [r[0] for r in conn.execute(USER_TABLES_SQL, {"limit": limit}).fetchall()]


# pg_restore's words for a file that is no archive at all (a usage error); anything else --list says
# (a newer archive version, an unreadable or damaged file) is a failure of the restore itself.
_NOT_AN_ARCHIVE = ("does not appear to be a valid archive", "is too short", "appears to be a text format dump")


def _refuse_archive(path: Path, stderr: str) -> None:
    said = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "no message")
    said = said.removeprefix("pg_restore: ").removeprefix("error: ")
    if any(words in said for words in _NOT_AN_ARCHIVE):
        raise UsageError(f"{path} is not a pg_dump custom-format archive (pg_restore: {said})")
    raise DbtoolError(f"cannot read the archive {path} (pg_restore: {said})")


def restore(target: Target, path: Path, *, force: bool = False, no_owner: bool = False) -> Outcome:
    """pg_restore `path` into the target; refuses a non-empty database unless force."""
    started = time.monotonic()
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no backup file {path}")
    dbname, major = _server(target)
    pg_restore = tool("pg_restore", server_major=major)
    # Read the archive's table of contents first: a wrong file fails before anything is touched.
    listing = subprocess.run([pg_restore, "--list", str(path)], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        _refuse_archive(path, listing.stderr)
    if not force:
        found = user_tables(target)
        if found:
            raise RestoreRefused(f"{target.display()} is not empty (has {', '.join(found[:3])}"
                                 f"{', ...' if len(found) > 3 else ''}); nothing restored (use --force / FORCE=1 "
                                 "to replace what the backup contains)")
    args, env = _libpq_args(target, dbname)
    cmd = [pg_restore, "--single-transaction", *args]
    if force:
        cmd += ["--clean", "--if-exists"]
    if no_owner:
        cmd += ["--no-owner", "--no-privileges"]
    _run(target, [*cmd, str(path)], env, "pg_restore")
    return Outcome(path, time.monotonic() - started, path.stat().st_size)
