"""The local cluster: quoting, and never adopting a folder someone else planted."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from dbtool import devdb
from dbtool.errors import DbtoolError


def test_a_planted_symlink_is_never_chowned(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    mode_before = victim.stat().st_mode
    long_base = tmp_path / ("x" * 120) / "pg"  # too long for a socket path: the socket folder moves to /tmp
    cluster = devdb.Cluster(long_base)
    assert Path(tempfile.gettempdir()) in cluster.sockdir.parents
    cluster.sockdir.parent.mkdir(parents=True, exist_ok=True)
    if cluster.sockdir.is_symlink() or cluster.sockdir.exists():
        os.remove(cluster.sockdir) if cluster.sockdir.is_symlink() else os.rmdir(cluster.sockdir)
    os.symlink(victim, cluster.sockdir)
    try:
        with pytest.raises(DbtoolError, match="not a plain folder"):
            cluster.ensure_running()
        assert victim.stat().st_mode == mode_before and victim.stat().st_uid == os.geteuid()
    finally:
        os.remove(cluster.sockdir)


def test_a_checkout_path_with_spaces_starts(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="dbtool space ", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    base.chmod(0o755)  # as root the cluster runs as postgres, which must reach it
    cluster = devdb.Cluster(base / "pg", port=25450)
    try:
        cluster.ensure_running()
        assert cluster.running()
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
