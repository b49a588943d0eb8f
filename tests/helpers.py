"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from dbtool.catalog.read import read_catalog
from dbtool.paths import ROOT


def conn_url(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"


def run_dbtool(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120):
    """Run the real CLI in a subprocess (exit codes, stderr, no traceback)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",) and not k.startswith("PG")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "dbtool", *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout, cwd=ROOT)


def catalog_of(url: str, schemas: list[str]) -> dict:
    with psycopg.connect(url) as conn:
        return read_catalog(conn, schemas)
