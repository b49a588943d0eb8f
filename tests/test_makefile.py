"""Make targets that cannot hurt: values are never executed, stopping needs no venv, clean keeps a
cluster it could not stop."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbtool.devdb import Cluster
from dbtool.paths import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs make")


@pytest.fixture
def checkout() -> Iterator[Path]:
    """The project's Makefile and package, without a venv (as after a fresh clone), in a folder the
    postgres user can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="dbtool-make-"))
    dest = base / "co"
    dest.mkdir()
    for part in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy2(ROOT / part, dest / part)
    for part in ("dbtool", "sql", "migrations"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    for d in (base, dest):
        d.chmod(0o755)
    (dest / "stamp").touch()  # newer than the lock: `STAMP=stamp` stands for an installed venv
    yield dest
    shutil.rmtree(base, ignore_errors=True)


def make(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DBTOOL_", "PG")) and k != "DATABASE_URL"}
    return subprocess.run(["make", "-C", str(checkout), f"PY={sys.executable}", *args], capture_output=True,
                          text=True, timeout=120, env={**full, **env})


def test_file_and_out_values_are_never_executed(checkout, tmp_path):
    # STAMP=stamp: no venv is built; DBTOOL=echo shows the arguments dbtool would get.
    evil = f"`touch {tmp_path}/pwned`'\"; touch {tmp_path}/pwned2"
    out = make(checkout, "restore", f"FILE={evil}", "STAMP=stamp", "DBTOOL=echo")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert evil in out.stdout  # handed over as one argument, as typed
    out = make(checkout, "backup", f"OUT={evil}", "STAMP=stamp", "DBTOOL=echo")
    assert out.returncode == 0 and not (tmp_path / "pwned").exists() and f"--out {evil}" in out.stdout


def test_db_down_and_clean_need_no_venv_and_keep_what_they_cannot_stop(checkout):
    cluster = Cluster(checkout / "var" / "pg", dbname="dbtool")
    cluster.ensure_running()
    try:
        assert cluster.running()
        # A cluster clean cannot stop (its binaries are gone): nothing is deleted.
        kept = make(checkout, "clean", "PG_BINDIR=/nonexistent")
        # As root pg_ctl runs through runuser (which exists) and the live postmaster.pid stops clean; as a
        # normal user the missing binary itself stops it. Either way: one line, and nothing deleted.
        assert kept.returncode != 0 and ("stop it before deleting anything" in kept.stderr
                                         or "cannot run /nonexistent/pg_ctl" in kept.stderr), kept.stderr
        assert (checkout / "var" / "pg" / "data" / "PG_VERSION").exists() and cluster.running()
        down = make(checkout, "db-down")
        assert down.returncode == 0, down.stderr
        assert not cluster.running() and not (checkout / ".venv").exists()
        cluster.ensure_running()
        gone = make(checkout, "clean")
        assert gone.returncode == 0, gone.stderr
        assert not (checkout / "var").exists() and not (checkout / ".venv").exists()
    finally:
        if (checkout / "var" / "pg").exists():
            cluster.destroy()
