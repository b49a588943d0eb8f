"""crm.reco_run: One recommendation run: its configuration, status and result counts.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Behaviours: create a run whose config_hash is a deterministic fingerprint of its configuration
(same config, same hash), find the runs made with a configuration, and move a run through its statuses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg

from .._lifecycle import Lifecycle
from .._table import Page, Table, utcnow
from ..rows_generated import RecoRun

T = Table("crm", "reco_run", RecoRun)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

STATUS = Lifecycle(T, {"RUNNING": ["PENDING"], "COMPLETED": ["RUNNING"], "FAILED": ["PENDING", "RUNNING"],
                       "CANCELLED": ["PENDING", "RUNNING"]})


def canonical_json(config: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is: one text per configuration."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of `config`."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def create(conn: psycopg.Connection, *, config: Mapping[str, Any], run_id: str | None = None) -> RecoRun:
    """A new PENDING run for `config` (run_id defaults to RUN_<first 12 hex of the hash>_<random 8 hex>)."""
    digest = config_hash(config)
    run_id = run_id or f"RUN_{digest[:12]}_{uuid.uuid4().hex[:8]}"
    # Store the config as parsed from its canonical text so that jsonb holds exactly what was hashed.
    return T.insert(conn, run_id=run_id, config_hash=digest, config=json.loads(canonical_json(config)))


def with_config(conn: psycopg.Connection, *, config: Mapping[str, Any], after: tuple | None = None,
                limit: int = 100) -> Page[RecoRun]:
    """Runs made with this same configuration (reproductions of one another)."""
    return T.page(conn, after=after, limit=limit, config_hash=config_hash(config))


def start(conn: psycopg.Connection, *, run_id: str, now: dt.datetime | None = None) -> RecoRun:
    return STATUS.move(conn, to="RUNNING", key={"run_id": run_id}, also={"started_at": now or utcnow()})


def finish(conn: psycopg.Connection, *, run_id: str, now: dt.datetime | None = None) -> RecoRun:
    return STATUS.move(conn, to="COMPLETED", key={"run_id": run_id}, also={"finished_at": now or utcnow()})


def fail(conn: psycopg.Connection, *, run_id: str, error_message: str, now: dt.datetime | None = None) -> RecoRun:
    return STATUS.move(conn, to="FAILED", key={"run_id": run_id},
                       also={"finished_at": now or utcnow(), "error_message": error_message})


