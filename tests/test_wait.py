"""`dbtool wait`: 0 once the server answers, 3 on timeout; an auth/database refusal still means "up"."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from dbtool import wait as wait_lib
from dbtool.config import Target
from dbtool.devdb import FAST_SETTINGS, Cluster
from dbtool.errors import ConnectError
from helpers import run_dbtool

LATE_PORT = 25440  # only names the socket file of the late cluster


def _url(sockdir: Path | str, port: int, dbname: str = "postgres") -> str:
    return f"postgresql://postgres@/{dbname}?host={sockdir}&port={port}"


def test_no_server_times_out_with_exit_3_and_one_line(tmp_path):
    started = time.monotonic()
    done = run_dbtool("wait", "--timeout", "1", "--database-url", _url(tmp_path, LATE_PORT))
    elapsed = time.monotonic() - started
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbtool: ") and "not ready after 1s" in last and "no answer" in last
    assert "Traceback" not in done.stderr
    assert elapsed >= 1


def test_server_up_returns_at_once(db_url):
    done = run_dbtool("wait", "--timeout", "5", "--database-url", db_url)
    assert done.returncode == 0, done.stderr
    assert "server up after" in done.stderr and "(1 attempt(s))" in done.stderr and "note:" not in done.stderr


def test_server_up_but_database_missing_counts_as_up_and_says_so(postgresql):
    url = _url(postgresql.info.host, postgresql.info.port, "no_such_database")
    done = run_dbtool("wait", "--timeout", "5", "--database-url", url)
    assert done.returncode == 0, done.stderr
    assert "server up after" in done.stderr and 'database "no_such_database" does not exist' in done.stderr


def test_login_waits_for_the_database_and_times_out_with_the_reason(postgresql):
    target = Target(_url(postgresql.info.host, postgresql.info.port, "no_such_database"), "test")
    with pytest.raises(ConnectError, match=r"not ready after 0\.6s .*does not exist"):
        wait_lib.wait(target, timeout=0.6, login=True, poll=0.1)


@pytest.fixture
def late_cluster():
    # /dev/shm or /tmp: as root the server runs as `postgres`, which cannot reach pytest's private tmp_path.
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="dbtool-wait-", dir=parent)), port=LATE_PORT,
                      dbname="postgres", settings=FAST_SETTINGS)
    yield cluster
    cluster.destroy()
    shutil.rmtree(cluster.base, ignore_errors=True)


def test_server_that_comes_up_later(late_cluster):
    errors: list[BaseException] = []

    def start_later():
        time.sleep(1.0)
        try:
            late_cluster.ensure_running()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    late_cluster.sockdir.mkdir(parents=True, exist_ok=True)
    starter = threading.Thread(target=start_later, daemon=True)
    started = time.monotonic()
    starter.start()
    done = run_dbtool("wait", "--timeout", "90", "--database-url", _url(late_cluster.sockdir, LATE_PORT))
    elapsed = time.monotonic() - started
    starter.join(timeout=90)
    assert not errors, errors
    assert done.returncode == 0, done.stderr
    attempts = int(re.search(r"\((\d+) attempt", done.stderr).group(1))
    assert elapsed >= 1.0 and attempts > 1
