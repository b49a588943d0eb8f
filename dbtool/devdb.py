"""A throwaway PostgreSQL cluster started from the system's server binaries.

Used by `make migrate` when no database is configured (data under var/pg, git-ignored)
and by the test suite (on /dev/shm). It listens on a Unix socket only, so it never
competes for a TCP port. initdb and postgres refuse to run as root: as root the
cluster is owned by, and run as, the `postgres` user through runuser.

Private to whoever runs it: the data and socket folders are 0700 (owned by postgres as
root) and the socket 0700, so no other local user reaches the server. Local connections
are then trusted: only the owner (and root, who may read the data files anyway) can make
one. Peer authentication would refuse root connecting as `postgres`, which is how dbtool
and the test suite reach a cluster started as root. TCP is off, and refused in pg_hba.conf.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from . import paths, settings
from .errors import DbtoolError

SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.NNNNN"
FAST_SETTINGS = ("fsync=off", "full_page_writes=off", "synchronous_commit=off")


def bindir() -> Path:
    """The server binaries: $PG_BINDIR, else pg_config --bindir, else the newest /usr/lib/postgresql/*/bin."""
    given = settings.get("PG_BINDIR")
    if given:
        return Path(given)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    raise DbtoolError("no PostgreSQL server binaries found (install postgresql, or set PG_BINDIR or DATABASE_URL)")


def _refuse_foreign(path: Path) -> None:
    """Never hand over (chown) a folder someone else planted, e.g. a symlink in /tmp."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise DbtoolError(f"{path} is not a plain folder (a symlink?): refusing to use it for the local cluster")
    allowed = {os.geteuid()}
    if os.geteuid() == 0:
        allowed.add(pwd.getpwnam("postgres").pw_uid)
    if st.st_uid not in allowed:
        raise DbtoolError(f"{path} belongs to uid {st.st_uid}: refusing to use it for the local cluster")


def _make_private(path: Path, say: Callable[[str], None]) -> None:
    """Only the cluster's owner may enter the folder (0700, owned by postgres as root).

    The socket lives in such a folder, so no other local user reaches the server, whatever
    pg_hba.conf says (root does, as root reaches everything). A folder made by an older dbtool
    (0755) is tightened here, and we say so. Changed through a descriptor opened without
    following symlinks, so a folder swapped for a link in between is never touched.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.fchown(fd, pg.pw_uid, pg.pw_gid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
            if st.st_mode & 0o077:
                say(f"local cluster: {path} was open to other local users (mode {stat.S_IMODE(st.st_mode):o}); "
                    "made it private (700)")
    finally:
        os.close(fd)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _run_as() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Cluster:
    def __init__(self, base: Path, *, port: int = 5432, dbname: str = "dbtool", settings: tuple[str, ...] = ()):
        self.base = Path(base)
        self.data = self.base / "data"
        self.port = port
        self.dbname = dbname
        self.settings = settings
        self.sockdir = self._socket_dir()

    def _socket_dir(self) -> Path:
        if len(str(self.base)) + 20 <= SOCKET_PATH_MAX:
            return self.base
        digest = hashlib.sha1(str(self.base).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"dbtool-sock-{digest}"

    # -- lifecycle -------------------------------------------------------------
    def _cmd(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run([*_run_as(), *args], capture_output=True, text=True, **kw)
        except OSError as exc:  # a missing binary (a wrong PG_BINDIR), or runuser missing
            raise DbtoolError(f"cannot run {args[0]}: {exc.strerror}") from None
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise DbtoolError(f"{Path(args[0]).name} failed: {detail[-1] if detail else proc.returncode}")
        return proc

    def _prepare_dirs(self, say: Callable[[str], None]) -> None:
        for d in {self.base, self.sockdir}:
            d.parent.mkdir(parents=True, exist_ok=True)
            try:
                d.mkdir(mode=0o700)
            except FileExistsError:  # ours from an earlier run, or planted: checked next
                pass
            _refuse_foreign(d)
            _make_private(d, say)
        if os.geteuid() == 0 and self._cmd("test", "-w", str(self.base), check=False).returncode != 0:
            raise DbtoolError(
                f"user postgres cannot write {self.base} (a parent folder is private); "
                "set DATABASE_URL or move the checkout somewhere postgres can reach"
            )

    def bindir(self) -> Path:
        """The binaries of the cluster's own major version once it exists (a newer install cannot start it)."""
        version = self.data / "PG_VERSION"
        if version.exists() and not settings.get("PG_BINDIR"):
            own = Path(f"/usr/lib/postgresql/{version.read_text().strip()}/bin")
            if (own / "pg_ctl").exists():
                return own
        return bindir()

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._cmd(str(self.bindir() / "pg_ctl"), "status", "-D", str(self.data), check=False).returncode == 0

    @contextmanager
    def _lock(self):
        # Several `dbtool migrate` processes may start the cluster at once.
        lockfile = self.base.parent / f".{self.base.name}.lock"
        lockfile.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lockfile, os.O_RDONLY | os.O_CREAT, 0o644)  # read-only: another user's file still locks
        except PermissionError:
            raise DbtoolError(f"cannot use the local cluster's lock file {lockfile} (created by another user?); "
                              "set DATABASE_URL or run as that user") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ensure_running(self, say: Callable[[str], None] = _to_stderr) -> "Cluster":
        with self._lock():
            self._prepare_dirs(say)
            if not self.initialised():
                self._cmd(str(self.bindir() / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth-local=trust", "--auth-host=reject",  # private socket folder: see _make_private
                          "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            if not self.running():
                # pg_ctl hands -o to a shell: quote what may hold spaces.
                opts = " ".join([f"-k {shlex.quote(str(self.sockdir))}", "-c listen_addresses=''", f"-p {self.port}",
                                 "-c unix_socket_permissions=0700",  # the owner only, also in an older cluster
                                 *(f"-c {shlex.quote(s)}" for s in self.settings)])
                log = self.base / "server.log"
                started = self._cmd(str(self.bindir() / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
                                    "-l", str(log), "-o", opts, check=False)
                if started.returncode != 0:
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
                    raise DbtoolError(f"the local PostgreSQL did not start: {' '.join(tail) or started.stderr.strip()}"
                                      f" (log: {log})")
            self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg  # here, so `python -m dbtool.devdb down` needs only the standard library
        from psycopg import sql

        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))

    def stop(self) -> None:
        if self.running():
            self._cmd(str(self.bindir() / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        if self.sockdir != self.base:
            shutil.rmtree(self.sockdir, ignore_errors=True)

    # -- addressing ------------------------------------------------------------
    def conninfo(self, dbname: str | None = None) -> str:
        host = quote(str(self.sockdir), safe="/")  # a folder name may hold spaces
        return f"postgresql://postgres@/{quote(dbname or self.dbname)}?host={host}&port={self.port}"


def default_cluster() -> Cluster:
    return Cluster(settings.get("DBTOOL_DEVDB_DIR") or paths.var_dir() / "pg")


def main(argv: list[str]) -> int:
    """`python -m dbtool.devdb down`: stop the local cluster without the venv (make db-down, make clean)."""
    if argv != ["down"]:
        print("usage: python -m dbtool.devdb down", file=sys.stderr)
        return 2
    cluster = default_cluster()
    try:
        cluster.stop()
        if (cluster.data / "postmaster.pid").exists():  # pg_ctl could not tell, or could not stop it
            raise DbtoolError(f"the local cluster in {cluster.base} may still be running ({cluster.data}/postmaster.pid"
                              " exists): stop it before deleting anything")
    except DbtoolError as exc:
        print(f"dbtool: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
