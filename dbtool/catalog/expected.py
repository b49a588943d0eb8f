"""The expected catalog: what PostgreSQL itself makes of sql/.

`build` applies a module's migrations to a scratch database and reads it back with
the live-side queries; `make snapshot` stores the result in snapshots/<module>.json
(committed, reviewable; a test fails when it is stale). `validate` then needs only
read access to its target.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg import sql

from ..config import Target
from ..errors import DbtoolError
from ..fetch import fetch_one
from ..lock import application_name
from .model import Catalog
from .read import read_catalog

SNAPSHOT_DIR = Path(__file__).with_name("snapshots")
FORMAT = 2  # 2: the typed model (dbtool.catalog.model) serialised, every kind it has


# The keeper session's server pid and start (microseconds since the epoch): who made a scratch database.
_KEEPER_SQL = """SELECT pid, floor(extract(epoch FROM backend_start) * 1000000)::bigint
                 FROM pg_stat_activity WHERE pid = pg_backend_pid()"""
_ALIVE_SQL = """SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND (backend_start IS NULL
                OR floor(extract(epoch FROM backend_start) * 1000000)::bigint = %s))"""
_MINE_SQL = """SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database
               WHERE left(datname, %s) = %s AND pg_has_role(datdba, 'MEMBER') ORDER BY datname"""


@contextmanager
def scratch_database(server: Target, prefix: str = "dbtool_scratch", *, say: Callable[[str], None] | None = None):
    """A throwaway database on the same server; needs CREATEDB.

    One session (the keeper) stays open while it exists; the database's name carries that session's
    server pid and start time: `<prefix>_<pid>_<start, hex>_<random>`. A run killed with -9 never drops
    its database, but its keeper session ends with the process: a database of `prefix` whose keeper
    is provably gone is left over, and the next scratch_database drops it (and says so through `say`).
    """
    with server.connect(autocommit=True, dbname="postgres", application_name=application_name("scratch")) as keeper:
        pid, started = fetch_one(keeper.execute(_KEEPER_SQL))
        drop_left_over(keeper, prefix, say or (lambda _msg: None))
        name = f"{prefix}_{pid}_{started:x}_{uuid.uuid4().hex[:8]}"
        if len(name.encode()) > 63:  # PostgreSQL would cut it, and the drop below would miss it
            raise DbtoolError(f"scratch database prefix {prefix!r} is too long")
        keeper.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        try:
            maker = f"host={socket.gethostname().split('.')[0][:20]} pid={os.getpid()}"
            keeper.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(
                f"dbtool scratch database of {maker}; dropped when that run ends, or by the next scratch build "
                f"once its server session (pid {pid}) is gone")))
            yield server.with_params(dbname=name)
        finally:
            keeper.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_left_over(keeper: psycopg.Connection, prefix: str, say: Callable[[str], None]) -> list[str]:
    """Drop the scratch databases of `prefix` (that this role owns) whose keeper session is gone; their names."""
    shape = re.compile(rf"{re.escape(prefix)}_(\d+)_([0-9a-f]+)_[0-9a-f]{{8}}")
    dropped = []
    for name, comment in keeper.execute(_MINE_SQL, (len(prefix) + 1, prefix + "_")).fetchall():
        m = shape.fullmatch(name)
        if not m or fetch_one(keeper.execute(_ALIVE_SQL, (int(m.group(1)), int(m.group(2), 16))))[0]:
            continue  # not one of ours, or its run is still going
        try:
            keeper.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            say(f"could not drop the left-over scratch database {name}: {' '.join(str(exc).split())}")
            continue
        who = re.search(r"host=\S* pid=\d+", comment)
        say(f"dropped the scratch database {name}, left by a run that is gone "
            f"({who.group(0) if who else 'made before dbtool recorded its maker'}; its server session, "
            f"pid {m.group(1)}, has ended)")
        dropped.append(name)
    return dropped


def build(server: Target, modules: list[str], *, say: Callable[[str], None] | None = None) -> dict[str, Catalog]:
    """{module: catalog} built from sql/ on a scratch database of `server` (`say`: what left-over scratch
    databases of killed runs were dropped)."""
    from .. import migrate as migrate_lib

    with scratch_database(server, say=say) as scratch:
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
