"""Issue 12, the rest of item 7: what DuckDB writes beside the analytics file is as private as the file.

The file holds phone numbers and messages, and so do its write-ahead log (`<file>.wal`, created at the first
write and again after every checkpoint) and its spill folder (`<file>.tmp`, sorts bigger than memory). Under a
permissive umask (022) all of them must still be 0600 (folders 0700) while dbtool's connection is open.
"""

from __future__ import annotations

import gc
import os
import stat
import threading
import time
from pathlib import Path

import duckdb
import psycopg
import pytest

from analytics_helpers import add_messages, add_session, add_user
from dbtool.analytics import db
from dbtool.analytics.sync import sync
from helpers import run_dbtool


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    try:
        yield
    finally:
        gc.collect()  # connections of the test: their hold on the umask ends
        os.umask(before)


@pytest.fixture
def chat(postgresql):
    s = add_session(postgresql, add_user(postgresql, "+5511900001111"), "s-files")
    add_messages(postgresql, s, 2000, content="my phone is +5511900001111, my street Rua X")
    postgresql.commit()
    return postgresql


class Watch(threading.Thread):
    """Records the mode of every file and folder under `folder` while it runs."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.seen, self.done = folder, {}, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for root, dirs, files in os.walk(self.folder):
                for name in [*dirs, *files]:
                    path = Path(root, name)
                    try:
                        self.seen[path.relative_to(self.folder).as_posix()] = mode(path)
                    except FileNotFoundError:
                        pass
            time.sleep(0.001)

    def __enter__(self) -> "Watch":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


def test_the_wal_and_the_spill_files_of_a_sync_are_private(chat, db_url, tmp_path, umask_022):
    folder = tmp_path / "duck"
    folder.mkdir()
    path = folder / "a.duckdb"
    with Watch(folder) as watch:
        duck = db.connect(path)
        db.apply_schema(duck)
        with psycopg.connect(db_url) as pg:
            assert sync(pg, duck).messages == 2000
        assert mode(path) == 0o600 and mode(folder / "a.duckdb.wal") == 0o600  # written, not yet checkpointed
        # A sort far bigger than the memory DuckDB may use spills to <file>.tmp.
        duck.execute("SET memory_limit = '48MB'")
        duck.execute("SET threads = 1")
        duck.execute("SET preserve_insertion_order = false")
        assert duck.execute("SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) || repeat('x', 60) AS s"
                            " FROM range(3000000) r(i) ORDER BY s)").fetchall() == [(3000000,)]
        duck.close()
    spilled = {name: m for name, m in watch.seen.items() if name.startswith("a.duckdb.tmp/")}
    assert spilled, f"DuckDB spilled nothing: {watch.seen}"
    assert watch.seen["a.duckdb.tmp"] == 0o700
    assert set(spilled.values()) == {0o600}, spilled
    assert {watch.seen[name] for name in ("a.duckdb", "a.duckdb.wal")} == {0o600}
    del duck
    gc.collect()
    assert os.umask(0o022) == 0o022  # the process umask is back once the connection is gone


def test_an_open_file_wal_and_spill_folder_left_by_an_older_run_are_narrowed(tmp_path, umask_022):
    path = tmp_path / "a.duckdb"
    duckdb.connect(str(path)).close()  # as an older dbtool (or DuckDB itself) left them
    wal, spill = db.companions(path)
    wal.write_bytes(b"")  # an empty WAL: DuckDB replays nothing
    spill.mkdir()
    for file, m in ((path, 0o644), (wal, 0o644), (spill, 0o755)):
        os.chmod(file, m)
    with db.connect(path) as duck:
        duck.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert (mode(path), mode(wal), mode(spill)) == (0o600, 0o600, 0o700)


def test_cli_sync_and_init_leave_a_private_file(chat, db_url, tmp_path, umask_022):
    path = tmp_path / "new" / "a.duckdb"
    done = run_dbtool("analytics", "sync", "--create", "--database-url", db_url, "--path", str(path))
    assert done.returncode == 0, done.stderr
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.duckdb"]
    other = tmp_path / "b.duckdb"
    assert run_dbtool("analytics", "init", "--path", str(other)).returncode == 0
    assert mode(other) == 0o600
