"""The scratch copy a trace runs on: a database on the target's own server, holding the target's schema.

The schema comes from `pg_dump --schema-only` of the target, piped through psql into a fresh database
made by catalog.expected.scratch_database (prefix `dbtool_trace`): named after its keeper session, dropped
when the trace ends however it ends, and, after a kill -9, by the next trace (or any scratch build of
that prefix) once the keeper session is gone.

Why a dump and not the migrations already applied: the copy must be what the migration will meet, not
what sql/ says it should meet. A dump carries the target's drift (an index added by hand, a column of
another type, a trigger), files edited since they were applied, and schemas dbtool does not manage, all
of which change what a statement locks or rewrites. On the same server the cluster's roles exist, so
the dump's GRANTs to the module roles (crm_rw, crm_ro, ...) restore as they are. Objects are owned by
the role running the trace (--no-owner: it need not be a member of the target's owners); a dump
statement the server refuses (an extension only a superuser may create, default privileges of a role
this one is not a member of) is skipped and reported, and the trace goes on.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

from .. import settings
from ..backup import _dies_with_us, _libpq_args, tool
from ..catalog.expected import scratch_database
from ..config import Target
from ..errors import DbtoolError, RefusedError, first_line
from .model import CopyInfo

PREFIX = "dbtool_trace"
METHOD = "pg_dump --schema-only --no-owner of the target, restored with psql on the same server"


def _tools(server_major: int) -> tuple[str, str]:
    pg_dump = tool("pg_dump", server_major=server_major)
    psql = Path(pg_dump).with_name("psql")  # the same version: it knows the dump's meta-commands (\restrict)
    return pg_dump, str(psql) if psql.exists() else tool("psql", server_major=server_major)


def _run(cmd: list[str], env: dict[str, str], data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=data, capture_output=True, env=env, check=False, process_group=0,
                          preexec_fn=_dies_with_us())


def copy_schema(target: Target, dbname: str, scratch: Target, scratch_name: str, server_major: int) -> list[str]:
    """Dump the target's schema into `scratch`; notes on what the server refused (the copy goes on without it)."""
    pg_dump, psql = _tools(server_major)
    wait_ms = int(float(settings.get("DBTOOL_READ_LOCK_TIMEOUT")) * 1000)
    args, env = _libpq_args(target, dbname)
    dumped = _run([pg_dump, "--schema-only", "--no-owner", "--no-subscriptions", f"--lock-wait-timeout={wait_ms}",
                   *args], env)
    if dumped.returncode != 0:
        lines = [ln for ln in dumped.stderr.decode(errors="replace").splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else f"exit {dumped.returncode}")
        raise DbtoolError(target.mask(f"cannot copy the schema: pg_dump failed: {detail.strip()}"))
    s_args, s_env = _libpq_args(scratch, scratch_name)
    restored = _run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-o", "/dev/null", *s_args], s_env, dumped.stdout)
    errors = [ln.split("ERROR:", 1)[1].strip() for ln in restored.stderr.decode(errors="replace").splitlines()
              if "ERROR:" in ln]
    if restored.returncode != 0 and not errors:
        raise DbtoolError(scratch.mask(f"cannot copy the schema: psql exited {restored.returncode}"))
    if errors:
        return [f"the copy lacks {len(errors)} statement(s) of the schema dump that the server refused; the "
                f"first: {errors[0]}"]
    return []


@contextmanager
def scratch_copy(target: Target, *, say: Callable[[str], None]) -> Iterator[tuple[Target, CopyInfo]]:
    """A scratch database on the target's server holding the target's schema; dropped on the way out."""
    started = time.perf_counter()
    with target.connect() as conn:
        major, dbname = conn.info.server_version // 10000, conn.info.dbname
    with ExitStack() as stack:
        try:
            scratch = stack.enter_context(scratch_database(target, PREFIX, say=say))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RefusedError(f"the server refused this role: {first_line(exc)} (trace makes its scratch copy "
                               "with CREATE DATABASE on the target's server: it needs CREATEDB)") from None
        name = scratch.params["dbname"]
        say(f"trace: scratch copy {name} on the target's server (dropped when the trace ends)")
        info = CopyInfo(name, METHOD)
        info.notes += copy_schema(target, dbname, scratch, name, major)
        info.seconds = time.perf_counter() - started
        for note in info.notes:
            say(f"trace: {note}")
        yield scratch, info
