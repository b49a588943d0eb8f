"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from dbtool.catalog.model import Catalog
from dbtool.catalog.read import read_catalog
from dbtool.paths import ROOT

# The tables each specification names (../shared/seeds): the contract with the applications. sql/ may hold
# more (a table added as the README says): tests check these are among the tables, never that they are all.
SPEC_TABLES = {
    "crm": {"product", "product_alias", "customer", "order_line", "contact_event", "client_master_profile",
            "reco_run", "reco_item", "audit_item", "outcome_event"},
    "infra": {"customers", "agents", "events", "recommendations", "approvals", "optimizations"},
    "planning": {"store_clusters", "stores", "categories", "workflows", "historical_sales", "weekly_actuals"},
    "chatbot": {"users", "sessions", "messages", "qualified_leads", "car_interactions", "human_handoffs",
                "metrics_daily"},
}


def conn_url(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"


def dbtool_env(env: dict | None = None) -> dict:
    """The environment of a CLI run: no ambient database or DBTOOL_* settings, plus `env`."""
    full = {k: v for k, v in os.environ.items()
            if k != "DATABASE_URL" and not k.startswith(("PG", "DBTOOL_"))}
    full.update(env or {})
    return full


def run_dbtool(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120):
    """Run the real CLI in a subprocess (exit codes, stderr, no traceback)."""
    return subprocess.run([sys.executable, "-m", "dbtool", *args], capture_output=True, text=True,
                          env=dbtool_env(env), input=input, timeout=timeout, cwd=ROOT)


def start_dbtool(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start the real CLI without waiting (concurrency and kill tests)."""
    return subprocess.Popen([sys.executable, "-m", "dbtool", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dbtool_env(env), cwd=ROOT)


def finish_dbtool(proc: subprocess.Popen, timeout: float = 180) -> subprocess.CompletedProcess:
    """Wait for a started CLI run and collect its output; its pipes are closed (it is killed on timeout)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def copy_project(dest: Path) -> Path:
    """A copy of sql/ and migrations/ that a test may change (point DBTOOL_ROOT at it)."""
    for part in ("sql", "migrations"):
        shutil.copytree(ROOT / part, dest / part)
    return dest


def add_migration(root: Path, module: str, mid: str, files: dict[str, str], *, rollback: str = "SELECT 1",
                  transactional: bool = True) -> None:
    """Write sql/<module>/<files> and a migration <mid> (after the module's latest) applying them."""
    latest = max(p.stem for p in (root / "migrations" / module).glob(f"{module}_[0-9][0-9][0-9][0-9]_*.py"))
    for name, text in files.items():
        (root / "sql" / module / name).write_text(text)
    names = ", ".join(repr(n) for n in files)
    (root / "migrations" / module / f"{mid}.py").write_text(
        "from yoyo import step\nfrom dbtool.migration_steps import apply_files, rollback_sql\n"
        f"__depends__ = {{'{latest}'}}\n"
        f"__transactional__ = {transactional}\n"
        f"step(apply_files(__file__, {names}), rollback_sql(__file__, {rollback!r}))\n")


def catalog_of(url: str, schemas: list[str]) -> Catalog:
    with psycopg.connect(url) as conn:
        return read_catalog(conn, schemas)


def row_counts(conn: psycopg.Connection, tables) -> dict[str, int]:
    """{"schema.table": exact row count} of (schema, table) pairs, names quoted by psycopg."""
    from psycopg import sql

    return {f"{s}.{t}": conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(s, t))).fetchone()[0]
            for s, t in tables}
