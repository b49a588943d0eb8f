"""Backup and restore of the configured database with pg_dump -Fc / pg_restore.

The connection goes to the tools as `--dbname=<conninfo>` without the password, which
travels in PGPASSWORD (never on a command line that `ps` or an error message shows).
The tools come from the server's own major version when installed side by side
(/usr/lib/postgresql/<major>/bin), else dbtool.devdb.bindir(), else PATH: pg_dump
refuses a server newer than itself.

Restore refuses a database that already holds tables unless forced (then it drops what
the archive re-creates: --clean --if-exists), and runs in one transaction: a restore
that fails half-way leaves the target as it was.

Neither waits without end behind another session's lock (DBTOOL_DATA_LOCK_TIMEOUT, `--lock-timeout`, 10 s):
pg_dump runs with --lock-wait-timeout, and when it gives up dbtool names the sessions holding the conflicting
table locks (pg_locks, pg_stat_activity); nothing is written. pg_restore has no such option, and the archive
itself sets lock_timeout to 0 first (so PGOPTIONS cannot set it): dbtool watches pg_restore's session (named
by PGAPPNAME) from a connection of its own, and when it has waited for a lock that long, names who blocks it
(pg_blocking_pids) and cancels its statement; the restore's one transaction is rolled back, nothing changed.

pg_dump and pg_restore die with dbtool, even when dbtool is killed with SIGKILL (on Linux,
prctl(PR_SET_PDEATHSIG) in the child), so a killed restore never goes on to commit. The archive
is written by dbtool itself (pg_dump's stdout) into a file created 0600 in the target's folder:
unnamed (O_TMPFILE) where the filesystem allows, so a killed backup leaves nothing, else under a
unique `.partial` name created with O_EXCL. It is given its name only when complete, and only
where nothing was (or, with force, where a regular file was): never through a symbolic link,
never over a device node, a pipe or a folder.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from . import devdb, lock_wait, paths
from .config import Target
from .errors import DbtoolError, UsageError
from .lock import application_name

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


class ToolFailed(DbtoolError):
    """pg_dump or pg_restore exited non-zero (exit 1); `stderr` is what it said."""

    def __init__(self, message: str, stderr: str):
        super().__init__(message)
        self.stderr = stderr


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


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_us() -> Callable[[], None] | None:
    """preexec_fn tying a child's life to this process: on Linux it gets SIGKILL when we die (kill -9
    included), so a killed `dbtool restore` cannot leave pg_restore running on to its COMMIT."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # we died before prctl took effect: nobody would kill the child
            os.kill(os.getpid(), signal.SIGKILL)

    return in_child


def _run(target: Target, cmd: list[str], env: dict[str, str], what: str, *, stdout: int | None = None) -> None:
    """Run pg_dump / pg_restore in its own process group (a terminal's ^C reaches dbtool, which kills it),
    dying with dbtool; a failure is one line, with the tool's first error line."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if stdout is None else stdout, stderr=subprocess.PIPE,
                          text=True, env=env, check=False, process_group=0, preexec_fn=_dies_with_us())
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else f"exit {proc.returncode}")
        raise ToolFailed(target.mask(f"{what} failed: {detail.strip()}"), proc.stderr)


# pg_dump --lock-wait-timeout ends its LOCK TABLE with a statement timeout, and says which LOCK TABLE.
_PG_DUMP_LOCK_WAIT = re.compile(r"Query was: LOCK TABLE ")


def _dump_lock_timeout(target: Target, exc: ToolFailed, *, wait: float) -> DbtoolError:
    """pg_dump's failure, or, when it gave up waiting for a table lock, one line naming who holds it."""
    if not _PG_DUMP_LOCK_WAIT.search(exc.stderr):
        return exc
    try:
        with target.connect(application_name=application_name("backup"), autocommit=True) as conn:
            row = conn.execute(lock_wait.USER_SCHEMAS_SQL).fetchone()
            who = lock_wait.blockers(conn, list(row[0]) if row else [], lock_wait.BLOCKS_READS)
    except DbtoolError as failed:
        who = f"could not read who holds it ({failed})"
    return _lock_timeout(target, "backup", wait, who, outcome="nothing written")


def _lock_timeout(target: Target, command: str, wait: float, who: str, *, outcome: str) -> lock_wait.TableLockTimeout:
    """The one line of backup's or restore's lock timeout (the connection string masked)."""
    return lock_wait.TableLockTimeout(target.mask(lock_wait.message(
        command, wait, who, setting=lock_wait.DATA_SETTING, outcome=outcome)))


_WAITING_SQL = """
SELECT pid FROM pg_stat_activity
WHERE application_name = %s AND wait_event_type = 'Lock' AND datname = current_database()
"""


class _LockWatch(threading.Thread):
    """Watches, from a connection of its own, the sessions a child tool opened (by their application_name): one
    that has waited `wait` seconds for a lock gets its statement cancelled, once `blocked` names who blocks it."""

    def __init__(self, conn: psycopg.Connection, app: str, wait: float, interval: float = 0.1):
        super().__init__(daemon=True, name="dbtool-lock-watch")
        self.conn, self.app, self.wait, self.interval = conn, app, wait, interval
        self.blocked: str | None = None
        self._done = threading.Event()

    def run(self) -> None:
        since: dict[int, float] = {}  # pid -> when first seen waiting, in this unbroken wait
        while not self._done.wait(self.interval):
            try:
                now = time.monotonic()
                since = {r[0]: since.get(r[0], now) for r in self.conn.execute(_WAITING_SQL, (self.app,)).fetchall()}
                late = [pid for pid, first in since.items() if now - first >= self.wait]
                if late:
                    self.blocked = lock_wait.blockers_of(self.conn, late[0])
                    self.conn.execute("SELECT pg_cancel_backend(%s)", (late[0],))
                    return
            except psycopg.Error:  # the watch's connection broke: the tool goes on unwatched
                return

    def __enter__(self) -> "_LockWatch":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join()


def _server(target: Target) -> tuple[str, int]:
    with target.connect(application_name="dbtool backup") as conn:
        return conn.info.dbname, conn.info.server_version // 10000


def safe_name(dbname: str) -> str:
    """dbname as a plain file name: no folder part, not hidden, printable ASCII letters, digits, . _ -"""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", dbname).lstrip(".")[:100]
    return name or "database"


def default_path(dbname: str, *, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return paths.var_dir() / "backups" / f"{safe_name(dbname)}-{stamp}.dump"


def _os_error(what: str, exc: OSError) -> DbtoolError:
    return DbtoolError(f"{what}: {exc.strerror or exc}")


def _check_out(dir_fd: int, path: Path, *, force: bool) -> None:
    """Refuse anything at path but nothing, or (with force) a regular file; a symlink is never followed."""
    try:
        st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_error(f"cannot check {path}", exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{path} is a symbolic link; not writing through it (give the real file's path)")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file; nothing written")
    if not force:
        raise UsageError(f"{path} exists; nothing written (use --force to replace it)")


def _new_file(dir_fd: int, path: Path) -> tuple[int, str | None]:
    """(fd, None) for an unnamed 0600 file in path's folder, else (fd, name) of a new unique .partial one."""
    try:
        return os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd), None
    except (AttributeError, OSError):  # no O_TMPFILE here, or not on this filesystem
        pass
    for _ in range(100):
        name = f".{path.name}.{secrets.token_hex(6)}.partial"
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                           dir_fd=dir_fd), name
        except FileExistsError:
            continue
    raise DbtoolError(f"cannot create a file next to {path}")


def _publish(fd: int, dir_fd: int, partial: str | None, path: Path, *, force: bool) -> None:
    """Give the complete archive its name: atomically, and never replacing what appeared meanwhile."""
    if partial is None:  # name the unnamed file: a unique name first, it must exist to be renamed
        for _ in range(100):
            name = f".{path.name}.{secrets.token_hex(6)}.partial"
            try:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
                partial = name
                break
            except FileExistsError:
                continue
        else:
            raise DbtoolError(f"cannot name the archive next to {path}")
    try:
        if not force:
            try:  # a hard link never replaces: something that appeared at path meanwhile stays
                os.link(partial, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                return
            except FileExistsError:
                raise UsageError(f"{path} appeared while dumping; nothing replaced, nothing written") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):  # no hard links here
                    raise
        _check_out(dir_fd, path, force=force)
        os.replace(partial, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        try:
            os.unlink(partial, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def backup(target: Target, *, out: Path | None = None, force: bool = False,
           lock_timeout: float | None = None) -> Outcome:
    """pg_dump -Fc of the whole database to `out` (default var/backups/<db>-<UTC time>.dump).

    out must be new, or a regular file when force; its folder must exist (var/backups is created).
    pg_dump waits at most `lock_timeout` seconds (default DBTOOL_DATA_LOCK_TIMEOUT) for each table's lock;
    then nothing is written and lock_wait.TableLockTimeout names who holds it.
    """
    started = time.monotonic()
    wait = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
    if out is not None and not Path(out).parent.is_dir():
        raise UsageError(f"no folder {Path(out).parent} for --out {out} (create it first)")
    dbname, major = _server(target)
    path = Path(out) if out else default_path(dbname)
    if out is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(f"cannot create {path.parent} (use --out FILE elsewhere)", exc) from None
    pg_dump = tool("pg_dump", server_major=major)
    args, env = _libpq_args(target, dbname)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(f"cannot open the folder {path.parent}", exc) from None
    try:
        _check_out(dir_fd, path, force=force)
        try:
            fd, partial = _new_file(dir_fd, path)
        except OSError as exc:
            raise _os_error(f"cannot write in {path.parent}" + ("" if out else " (use --out FILE elsewhere)"),
                            exc) from None
        try:
            # pg_dump writes to our descriptor: it never opens a path itself (a seekable file, so the
            # archive still has its data offsets).
            try:
                _run(target, [pg_dump, "--format=custom", f"--lock-wait-timeout={lock_wait.timeout_ms(wait)}",
                              *args], env, "pg_dump", stdout=fd)
            except ToolFailed as exc:
                raise _dump_lock_timeout(target, exc, wait=wait) from None
            os.fsync(fd)
            size = os.fstat(fd).st_size
            try:
                _publish(fd, dir_fd, partial, path, force=force)
                partial = None
            except OSError as exc:
                raise _os_error(f"cannot write {path}", exc) from None
        finally:
            os.close(fd)
            if partial is not None:
                try:
                    os.unlink(partial, dir_fd=dir_fd)
                except FileNotFoundError:
                    pass
    finally:
        os.close(dir_fd)
    return Outcome(path, time.monotonic() - started, size)


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


def restore(target: Target, path: Path, *, force: bool = False, no_owner: bool = False,
            lock_timeout: float | None = None) -> Outcome:
    """pg_restore `path` into the target; refuses a non-empty database unless force.

    Each statement waits at most `lock_timeout` seconds (default DBTOOL_DATA_LOCK_TIMEOUT) for a lock; then the
    restore's one transaction is rolled back and lock_wait.TableLockTimeout names who holds it.
    """
    started = time.monotonic()
    wait = lock_wait.seconds(lock_timeout, setting=lock_wait.DATA_SETTING)
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
    app = application_name("restore")  # pg_restore's sessions, to watch (a killed run's show as stale, too)
    with target.connect(application_name=application_name("restore watch"), autocommit=True) as conn, \
            _LockWatch(conn, app, wait) as watch:
        try:
            _run(target, [*cmd, str(path)], {**env, "PGAPPNAME": app}, "pg_restore")
        except ToolFailed:
            if watch.blocked is None:
                raise
            raise _lock_timeout(target, "restore", wait, watch.blocked,
                                outcome="nothing restored (one transaction, rolled back)") from None
    return Outcome(path, time.monotonic() - started, path.stat().st_size)
