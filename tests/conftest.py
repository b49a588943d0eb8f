"""Fixtures: one throwaway PostgreSQL server per test session, a fresh database per test.

The server is started by the suite itself (root or not; on /dev/shm when it can be,
which makes cloning a database from the template about 10x faster) and listens on a
Unix socket only. pytest-postgresql's NoopExecutor + DatabaseJanitor create a
template database migrated by dbtool once; `postgresql` clones it for each test,
`empty_db` gives a test an empty database.

No DBTOOL_* variable of the developer's shell reaches the suite: isolated_env removes them before
dbtool is imported, helpers.dbtool_env keeps them out of CLI subprocesses, and every test is checked
for leaving one behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import isolated_env  # noqa: F401  (first: removes DBTOOL_* from os.environ before dbtool is imported)
import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from dbtool import migrate as migrate_lib
from dbtool.config import Target
from dbtool.devdb import FAST_SETTINGS, Cluster
from dbtool.paths import modules
from helpers import conn_url

TEST_PORT = 25433  # only names the socket file: the server has no TCP listener


def pytest_report_header(config) -> str | None:
    if isolated_env.REMOVED:
        return f"dbtool settings removed from the environment: {', '.join(isolated_env.REMOVED)}"
    return None


@pytest.fixture(autouse=True)
def no_dbtool_variables():
    """A test may set DBTOOL_* through monkeypatch (undone afterwards), never leave one for the next test."""
    assert isolated_env.dbtool_variables() == [], "DBTOOL_* set before the test"
    yield
    leaked = isolated_env.dbtool_variables()
    for name in leaked:
        del os.environ[name]
    assert leaked == [], f"the test left {leaked} in os.environ (use monkeypatch.setenv)"


def _scratch_dir() -> Path:
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return Path(tempfile.mkdtemp(prefix="dbtool-test-", dir=parent))


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = Cluster(_scratch_dir(), port=TEST_PORT, dbname="postgres",
                      settings=FAST_SETTINGS + ("max_connections=200",))
    cluster.ensure_running()
    yield cluster
    cluster.destroy()


def url_for(cluster: Cluster, dbname: str) -> str:
    return cluster.conninfo(dbname)


def _executor(cluster: Cluster, dbname: str) -> NoopExecutor:
    return NoopExecutor(host=str(cluster.sockdir), port=cluster.port, user="postgres", options="", dbname=dbname)


def _template(cluster: Cluster, dbname: str, load=None):
    executor = _executor(cluster, dbname)
    janitor = DatabaseJanitor(user="postgres", host=executor.host, port=executor.port,
                              dbname=executor.template_dbname, as_template=True)
    janitor.drop() if _exists(cluster, executor.template_dbname) else None
    with janitor:
        if load:
            load(url_for(cluster, executor.template_dbname))
        yield executor


def _exists(cluster: Cluster, dbname: str) -> bool:
    with psycopg.connect(url_for(cluster, "postgres")) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone())


def migrate_url(url: str) -> None:
    migrate_lib.migrate(Target(url, "test"), modules(), say=lambda _msg: None)


@pytest.fixture(scope="session")
def migrated_proc(pg_cluster):
    yield from _template(pg_cluster, "migrated", migrate_url)


@pytest.fixture(scope="session")
def empty_proc(pg_cluster):
    yield from _template(pg_cluster, "empty")


postgresql = factories.postgresql("migrated_proc")
empty_db = factories.postgresql("empty_proc")


@pytest.fixture
def db_url(postgresql) -> str:
    """URL of this test's freshly migrated database."""
    return conn_url(postgresql)


@pytest.fixture
def empty_url(empty_db) -> str:
    """URL of this test's empty database."""
    return conn_url(empty_db)
