"""The expected catalog: what PostgreSQL itself makes of sql/.

`build` applies a module's migrations to a scratch database and reads it back with
the live-side queries; `make snapshot` stores the result in snapshots/<module>.json
(committed, reviewable; a test fails when it is stale). `validate` then needs only
read access to its target.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from psycopg import sql

from ..config import Target
from ..errors import DbtoolError
from .model import Catalog
from .read import read_catalog

SNAPSHOT_DIR = Path(__file__).with_name("snapshots")
FORMAT = 2  # 2: the typed model (dbtool.catalog.model) serialised, every kind it has


@contextmanager
def scratch_database(server: Target, prefix: str = "dbtool_scratch"):
    """A throwaway database on the same server; needs CREATEDB."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"  # unique even across containers sharing a server
    with server.connect(autocommit=True, dbname="postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield server.with_params(dbname=name)
    finally:
        with server.connect(autocommit=True, dbname="postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def build(server: Target, modules: list[str]) -> dict[str, Catalog]:
    """{module: catalog} built from sql/ on a scratch database of `server`."""
    from .. import migrate as migrate_lib

    with scratch_database(server) as scratch:
        migrate_lib.migrate(scratch, modules, say=lambda _m: None)
        with scratch.connect() as conn:
            return {m: read_catalog(conn, [m]) for m in modules}


def snapshot_path(module: str) -> Path:
    return SNAPSHOT_DIR / f"{module}.json"


def dumps(module: str, catalog: Catalog) -> str:
    return json.dumps({"format": FORMAT, "module": module, "catalog": catalog.as_json()}, indent=1, sort_keys=True,
                      ensure_ascii=False) + "\n"


def write_snapshots(catalogs: dict[str, Catalog]) -> list[Path]:
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    paths = []
    for module, catalog in catalogs.items():
        snapshot_path(module).write_text(dumps(module, catalog), encoding="utf-8")
        paths.append(snapshot_path(module))
    load_snapshot.cache_clear()
    return paths


@lru_cache(maxsize=None)
def load_snapshot(module: str) -> Catalog:
    path = snapshot_path(module)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DbtoolError(f"no expected catalog for module {module} ({path}); run `make snapshot`") from None
    if data.get("format") != FORMAT:
        raise DbtoolError(f"{path}: snapshot format {data.get('format')} is not {FORMAT}; run `make snapshot`")
    return Catalog.from_json(data["catalog"])


def table_columns(module: str, table: str) -> list[str]:
    """Column names of a table, in table order, from the committed snapshot of sql/."""
    cols = load_snapshot(module).columns(module, table)
    if not cols:
        raise DbtoolError(f"no table {module}.{table} in the expected catalog")
    return [c.name for c in cols]
