"""What `dbtool backup` writes, and what a killed backup or restore leaves behind (issue 12).

--out names a new regular file (or an existing one, with --force): never a symbolic link, a device
node, a pipe or a folder; the archive is 0600 and appears whole or not at all. pg_dump and pg_restore
die with dbtool, even when dbtool is killed with SIGKILL, so a killed restore commits nothing.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dbtool import backup as backup_lib
from dbtool.config import Target
from helpers import copy_project, finish_dbtool, run_dbtool, start_dbtool

BIG_ROWS = 1_000_000  # a dump that takes pg_dump / pg_restore a moment


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("dbtool: "), done.stderr
    return lines[-1]


def backup(db_url: str, *args: str, env: dict | None = None):
    return run_dbtool("backup", "--database-url", db_url, *args, env=env)


# --- --out: what may be written ---------------------------------------------------------------

def test_a_new_file_is_created_0600_and_nothing_else_is_left(empty_url, tmp_path):
    out = tmp_path / "new.dump"
    done = backup(empty_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes()[:5] == b"PGDMP"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.dump"]


def test_a_symlink_at_out_is_refused_even_with_force(empty_url, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    link = tmp_path / "link.dump"
    link.symlink_to(victim)
    for extra in ((), ("--force",)):
        line = one_line_error(backup(empty_url, "--out", str(link), *extra), 2)
        assert "symbolic link" in line
        assert link.is_symlink() and os.readlink(link) == str(victim)
        assert victim.read_text() == "someone else's file\n"
    dangling = tmp_path / "dangling.dump"
    dangling.symlink_to(tmp_path / "nowhere")
    assert "symbolic link" in one_line_error(backup(empty_url, "--out", str(dangling)), 2)
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.dump", "link.dump", "victim.txt"]


def test_a_device_node_or_pipe_at_out_is_refused(empty_url, tmp_path):
    fifo = tmp_path / "pipe.dump"
    os.mkfifo(fifo)
    nodes = [fifo]
    if os.geteuid() == 0:  # a node like /dev/null, in a folder of ours
        null = tmp_path / "null.dump"
        os.mknod(null, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        nodes.append(null)
    for node in nodes:
        kind = os.lstat(node).st_mode
        line = one_line_error(backup(empty_url, "--out", str(node), "--force"), 2)
        assert "not a regular file" in line
        assert stat.S_IFMT(os.lstat(node).st_mode) == stat.S_IFMT(kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n.name for n in nodes)


def test_an_existing_file_is_kept_unless_force(empty_url, tmp_path):
    out = tmp_path / "other-tool.dat"
    out.write_text("not ours\n")
    line = one_line_error(backup(empty_url, "--out", str(out)), 2)
    assert "exists" in line and "--force" in line
    assert out.read_text() == "not ours\n"
    done = backup(empty_url, "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:5] == b"PGDMP" and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-tool.dat"]


def test_out_under_a_missing_folder_is_one_line_and_creates_nothing(empty_url, tmp_path):
    out = tmp_path / "no" / "such" / "x.dump"
    line = one_line_error(backup(empty_url, "--out", str(out)), 2)
    assert "no folder" in line and str(out.parent) in line
    assert not (tmp_path / "no").exists()


def test_backup_in_a_read_only_checkout_is_one_line(empty_url, tmp_path):
    root = copy_project(tmp_path / "checkout")
    if os.geteuid() == 0:  # root writes anywhere: make var/ unusable instead
        (root / "var").write_text("a file where var/ should be\n")
    else:
        root.chmod(0o555)
    try:
        line = one_line_error(backup(empty_url, env={"DBTOOL_ROOT": str(root)}), 1)
    finally:
        root.chmod(0o755)
    assert "var" in line and "--out" in line


def test_the_default_file_name_never_leaves_var_backups(pg_cluster, tmp_path):
    root = copy_project(tmp_path / "checkout")
    name = "../../evil/x"
    with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = psycopg.conninfo.make_conninfo(pg_cluster.conninfo("postgres"), dbname=name)
        done = backup(url, env={"DBTOOL_ROOT": str(root)})
        assert done.returncode == 0, done.stderr
        written = Path(done.stdout.strip())
        assert written.parent == root / "var" / "backups"
        assert [p.name for p in written.parent.iterdir()] == [written.name]
        assert "/" not in written.name and not written.name.startswith(".")
        assert not (tmp_path / "evil").exists() and not (root / "evil").exists()
    finally:
        with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


@pytest.mark.parametrize("dbname", ["..", "../x", "a/b", "/etc/passwd", ".hidden", "", "é ü/\\:*?"])
def test_default_path_is_a_plain_name_in_var_backups(dbname):
    path = backup_lib.default_path(dbname)
    assert path.parent.name == "backups" and path.parent.parent.name == "var"
    assert "/" not in path.name and "\\" not in path.name and not path.name.startswith(".")
    assert path.name.endswith(".dump")


# --- kill -9: no orphans, nothing committed, nothing left ---------------------------------------

@pytest.fixture(scope="module")
def big_source(pg_cluster, tmp_path_factory):
    """A database with one big table, and its archive."""
    name = "safety_big"
    admin = pg_cluster.conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_cluster.conninfo(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, %s) g",
                     (BIG_ROWS,))
        conn.execute("ALTER TABLE public.big ADD PRIMARY KEY (id)")
    archive = tmp_path_factory.mktemp("big") / "big.dump"
    backup_lib.backup(Target(url, "test"), out=archive)
    yield url, archive
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1: text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1])


def children_named(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st and st[0] == name and st[2] == parent:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


COPYING = "state = 'active' AND query LIKE 'COPY%%'"
WAITING_FOR_A_LOCK = "wait_event_type = 'Lock'"


def kill_when(proc, url: str, tool: str, condition: str, app: str | None = None) -> list[int]:
    """Wait until `tool` (a child of proc; its sessions' application_name is LIKE `app`, else `tool`) is seen on
    the server in `condition`, then kill -9 proc; the tool's pids."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as watch:
        while time.monotonic() < deadline:
            busy = watch.execute(f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s"
                                 f" AND {condition}", (app or tool,)).fetchone()[0]
            if busy:
                break
            assert proc.poll() is None, finish_dbtool(proc).stderr
            time.sleep(0.005)
        else:
            pytest.fail(f"{tool} never started copying")
    pids = children_named(proc.pid, tool)
    os.kill(proc.pid, signal.SIGKILL)
    finish_dbtool(proc)
    assert pids, f"no {tool} child found"
    return pids


def wait_gone(pids: list[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(p) for p in pids), "the tool outlived dbtool"


def wait_no_session(url: str, app: str) -> None:
    with psycopg.connect(url, autocommit=True) as watch:
        for _ in range(1000):
            if not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                                 (app,)).fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail(f"{app} is still connected")


def test_kill_9_of_restore_leaves_no_pg_restore_and_commits_nothing(big_source, empty_url):
    _, archive = big_source
    proc = start_dbtool("restore", str(archive), "--database-url", empty_url)
    # pg_restore's sessions are named after the dbtool run (PGAPPNAME), which watches them for lock waits
    pids = kill_when(proc, empty_url, "pg_restore", COPYING, app="dbtool restore host=%")
    wait_gone(pids, 5)
    wait_no_session(empty_url, "dbtool restore %")
    assert backup_lib.user_tables(Target(empty_url, "test")) == []


def test_kill_9_of_backup_leaves_no_pg_dump_and_no_file(big_source, tmp_path):
    """pg_dump waits for a lock we hold: an orphan would wait for ever, then write its file."""
    url, _ = big_source
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE public.big IN ACCESS EXCLUSIVE MODE")
        proc = start_dbtool("backup", "--database-url", url, "--out", str(out_dir / "big.dump"))
        pids = kill_when(proc, url, "pg_dump", WAITING_FOR_A_LOCK)
        wait_gone(pids, 5)
    wait_no_session(url, "pg_dump")
    assert list(out_dir.iterdir()) == []
