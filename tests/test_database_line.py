"""The `database:` line every command prints is a URI psql accepts as it is, without the password."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dbtool.config import Target
from helpers import run_dbtool


def database_line(stderr: str) -> str:
    m = re.search(r"^database: (\S+) \(from ", stderr, re.M)
    assert m, stderr
    return m.group(1)


@pytest.mark.skipif(not shutil.which("psql"), reason="needs psql")
def test_printed_uri_of_a_unix_socket_server_works_in_psql(db_url):
    out = run_dbtool("status", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    uri = database_line(out.stderr)
    assert uri.startswith("postgresql://") and "?host=/" in uri
    got = subprocess.run(["psql", "-X", "-At", "-c", "SELECT current_database()", uri],
                         capture_output=True, text=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == Target(db_url, "t").params["dbname"]


@pytest.mark.parametrize("conninfo,shown", [
    ("postgresql://app:s3cret@db.example:5433/prod", "postgresql://app@db.example:5433/prod"),
    ("host=::1 port=5432 dbname=x user=u password=s3cret", "postgresql://u@[::1]:5432/x"),
    ("postgresql://u@/my%20db?host=/tmp/a%20b&port=5433", "postgresql://u@/my%20db?host=/tmp/a%20b&port=5433"),
])
def test_display_is_a_uri_without_the_password(conninfo, shown):
    assert Target(conninfo, "t").display() == shown
