"""Wait for the PostgreSQL server to accept connections (deploy scripts, containers).

"Up" means what `pg_isready` means: libpq's PQping says the server answers and accepts
connections. A wrong password, a missing database or a pg_hba.conf refusal still mean
the server is up: `wait` returns and the next command reports the real problem, which
waiting would never fix. A server still starting, shutting down or in crash recovery
answers "reject" and we keep waiting. With `login=True` the wait lasts until an actual
login to the configured database succeeds (e.g. while an init script creates it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import pq
from psycopg.conninfo import make_conninfo

from .config import Target
from .errors import ConnectError, DbtoolError

POLL_SECONDS = 0.25
PING_TIMEOUT = 2  # libpq's connect_timeout is whole seconds; 2 is its useful minimum


@dataclass(frozen=True)
class Ready:
    seconds: float
    attempts: int
    note: str | None = None  # e.g. "authentication failed": up, but this login will not work


def ping(target: Target) -> pq.Ping:
    conninfo = make_conninfo(target.conninfo, connect_timeout=PING_TIMEOUT)
    return pq.Ping(pq.PGconn.ping(conninfo.encode()))  # libpq's PQping gives a plain int


def wait(target: Target, *, timeout: float, login: bool = False, poll: float = POLL_SECONDS) -> Ready:
    """Return once the server answers (or, with login=True, a login succeeds); ConnectError on timeout."""
    started = time.monotonic()
    deadline = started + timeout
    attempts = 0
    last = "no answer"
    while True:
        attempts += 1
        state = ping(target)
        if state == pq.Ping.NO_ATTEMPT:  # libpq could not even parse the conninfo: waiting cannot help
            raise DbtoolError(target.mask(f"cannot wait for {target.display()}: invalid connection parameters"))
        if state == pq.Ping.OK:
            note = _try_login(target)
            if note is None or not login:
                return Ready(time.monotonic() - started, attempts, note)
            last = note
        else:
            last = "server starting up or shutting down" if state == pq.Ping.REJECT else "no answer"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectError(f"{target.display()} not ready after {timeout:g}s ({attempts} attempt(s)): {last}")
        time.sleep(min(poll, remaining))


def _try_login(target: Target) -> str | None:
    """None when a login to the configured database works, else why not (one line, masked)."""
    try:
        target.connect(application_name="dbtool wait", connect_timeout=PING_TIMEOUT).close()
    except ConnectError as exc:
        return str(exc)
    return None

