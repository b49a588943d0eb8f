"""What one statement did, read by the session that ran it: its locks (pg_locks), the relations it rewrote
(pg_class.relfilenode), created or dropped, and the constraints it added or validated (pg_constraint).

In a transaction, pg_locks shows every lock the transaction holds so far: the caller attributes a lock to
the first statement after which it shows. A statement PostgreSQL refuses in a transaction block (CREATE
INDEX CONCURRENTLY, VACUUM) releases its locks before anyone can ask its own session: `Watcher` runs it
while a second session samples its pg_locks rows. That session holds an old snapshot and ACCESS SHARE on
every table of the user schemas, so a statement that waits for older transactions (every CONCURRENTLY) or for a lock
on a table stops where the sample sees what it holds and what it asks for; the watcher then lets go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .model import CONSTRAINT_TYPES, KINDS, ConstraintChange, Relation

_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
RELATIONS_SQL = f"""
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind::text, c.relfilenode::bigint, tn.nspname || '.' || t.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = x.indrelid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I', 'S', 'v', 'f') AND {_USER}
"""
CONSTRAINTS_SQL = f"""
SELECT co.oid::bigint, co.conname, co.contype::text, co.convalidated,
       coalesce(rn.nspname || '.' || r.relname, tn.nspname || '.' || t.typname, n.nspname)
FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
LEFT JOIN pg_class r ON r.oid = co.conrelid LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
LEFT JOIN pg_type t ON t.oid = co.contypid LEFT JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE co.contype <> 't' AND {_USER}
"""
# Relation locks of this session on user objects (oid >= FirstNormalObjectId): the catalog locks of the
# statement, and of these very queries, are not what a DBA asks about.
LOCKS_SQL = """
SELECT relation::bigint, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND relation::bigint >= 16384
"""
NAMES_SQL = """
SELECT c.oid::bigint, n.nspname || '.' || c.relname, c.relkind::text, tn.nspname || '.' || t.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = x.indrelid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.oid = ANY(%s::oid[]) AND n.nspname !~ '^pg_toast'
"""
# Another session's relation locks (granted, and the one it waits for), and whether it waits for `me`.
WATCH_SQL = """
SELECT array(SELECT l.relation::bigint || ' ' || l.mode FROM pg_locks l
             WHERE l.pid = %(pid)s AND l.locktype = 'relation' AND l.relation::bigint >= 16384),
       %(me)s = ANY(pg_blocking_pids(%(pid)s))
"""
REWRITE_KINDS = {"r", "m", "i", "t"}


@dataclass(frozen=True)
class Rel:
    oid: int
    schema: str
    relname: str
    kind: str
    filenode: int
    table: str | None = None   # an index's table

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.relname}"


@dataclass(frozen=True)
class Con:
    oid: int
    name: str
    type: str
    validated: bool
    on: str


@dataclass
class Snapshot:
    rels: dict[int, Rel]
    cons: dict[int, Con]

    def tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every table, for LOCK TABLE."""
        return sorted((r.schema, r.relname) for r in self.rels.values() if r.kind in ("r", "p"))


def snapshot(conn: psycopg.Connection) -> Snapshot:
    rels = {row[0]: Rel(*row) for row in conn.execute(RELATIONS_SQL).fetchall()}
    cons = {row[0]: Con(*row) for row in conn.execute(CONSTRAINTS_SQL).fetchall()}
    return Snapshot(rels, cons)


def held_locks(conn: psycopg.Connection) -> set[tuple[int, str]]:
    return {(oid, mode) for oid, mode in conn.execute(LOCKS_SQL).fetchall()}


@dataclass
class Changes:
    rewritten: list[Relation]
    created: list[Relation]
    dropped: list[Relation]
    constraints: list[ConstraintChange]


def _relation(r: Rel) -> Relation:
    return Relation(r.name, KINDS.get(r.kind, r.kind), r.table)


def changes(before: Snapshot, after: Snapshot) -> Changes:
    """What differs between two snapshots. A relation rewritten keeps its oid and gets a new relfilenode; an
    index rebuilt by ALTER COLUMN TYPE gets a new oid under the same name: both count as rewritten."""
    rewritten = [after.rels[o] for o, r in before.rels.items()
                 if o in after.rels and r.kind in REWRITE_KINDS and after.rels[o].filenode != r.filenode]
    gone = {r.name: r for o, r in before.rels.items() if o not in after.rels}
    created = []
    for o, r in after.rels.items():
        if o in before.rels:
            continue
        old = gone.pop(r.name, None)
        if old is not None and old.kind == r.kind and r.kind in REWRITE_KINDS:
            rewritten.append(r)
        else:
            created.append(r)
    dropped_tables = {r.name for r in gone.values()}
    went = {(c.on, c.name): c for o, c in before.cons.items() if o not in after.cons and c.on not in dropped_tables}
    cons = []
    for o, c in after.cons.items():
        kind, old_c = CONSTRAINT_TYPES.get(c.type, c.type), before.cons.get(o)
        if old_c is None:  # dropped and made again under its name (ALTER COLUMN TYPE does): checked again
            cons.append(ConstraintChange(c.name, c.on, kind, "re-created" if went.pop((c.on, c.name), None)
                                         else "added", c.validated))
        elif c.validated and not old_c.validated:
            cons.append(ConstraintChange(c.name, c.on, kind, "validated", True))
    cons += [ConstraintChange(c.name, c.on, CONSTRAINT_TYPES.get(c.type, c.type), "dropped", c.validated)
             for c in went.values()]  # not those that went with their table

    def order(rs: list[Rel]) -> list[Relation]:
        return [_relation(r) for r in sorted(rs, key=lambda r: (r.kind not in ("r", "p", "m"), r.name))]

    return Changes(order(rewritten), order(created), order(list(gone.values())),
                   sorted(cons, key=lambda c: (c.on, c.name)))


class Names:
    """oid -> Relation of the relations a trace has seen, dropped ones included."""

    def __init__(self) -> None:
        self.known: dict[int, Relation] = {}

    def learn(self, snap: Snapshot) -> None:
        self.known.update({o: _relation(r) for o, r in snap.rels.items()})

    def resolve(self, conn: psycopg.Connection, oids: set[int]) -> dict[int, Relation]:
        """The relations of `oids` a DBA knows: not a TOAST table or index (their locks go with their table's),
        nor the transient heap a rewrite fills and swaps in (gone by the time anyone asks)."""
        missing = [o for o in oids if o not in self.known]
        if missing:  # new since the last snapshot, or outside the user schemas' listing
            for o, name, kind, table in conn.execute(NAMES_SQL, (missing,)).fetchall():
                self.known[o] = Relation(name, KINDS.get(kind) or kind, table)
        return {o: self.known[o] for o in oids if o in self.known}


@dataclass
class Watched:
    seconds: float                # the statement's run, less the time it waited for the watcher
    locks: set[tuple[int, str]]   # (relation oid, mode): held or asked for, as sampled
    error: BaseException | None


class Watcher:
    """Runs a statement outside any transaction block while a second session samples its locks (see above)."""

    def __init__(self, monitor: psycopg.Connection, interval: float = 0.0005):
        self.monitor = monitor
        self.interval = interval
        self.me = monitor.info.backend_pid

    def run(self, worker: psycopg.Connection, fn: Callable[[], None], tables: list[tuple[str, str]]) -> Watched:
        mon = self.monitor
        mon.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        mon.execute("SELECT 1")  # takes the snapshot: what waits for older transactions waits for this one
        if tables:
            mon.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
                sql.SQL(", ").join(sql.Identifier(*t) for t in tables)))
        holding = True
        done: dict[str, object] = {}

        def work() -> None:
            t0 = time.perf_counter()
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done["error"] = exc
            finally:
                done["seconds"] = time.perf_counter() - t0

        thread = threading.Thread(target=work, name="dbtool-trace-statement", daemon=True)
        seen: set[tuple[int, str]] = set()
        waited = 0.0  # how long it waited for us, from the sample that saw it waiting to our letting go
        pid = worker.info.backend_pid
        started = time.perf_counter()
        try:
            thread.start()
            while True:
                finished, sampled = not thread.is_alive(), time.perf_counter()
                rows, blocked = mon.execute(WATCH_SQL, {"pid": pid, "me": self.me}).fetchone() or ([], False)
                for item in rows:
                    oid, mode = item.split(" ", 1)
                    seen.add((int(oid), mode))
                if holding and blocked:
                    mon.execute("COMMIT")  # let it go on: what it held and asked for is recorded
                    waited, holding = time.perf_counter() - sampled, False
                if finished:
                    break
                # Sample tightly at first (short phases), then gently (a build of millions of rows takes minutes).
                time.sleep(self.interval if time.perf_counter() - started < 2 else 0.01)
        except BaseException:  # Ctrl-C: stop the statement too, rather than wait for it
            worker.cancel()
            thread.join(timeout=5)
            raise
        finally:
            if holding:
                mon.execute("COMMIT")
        thread.join()
        seconds = float(done.get("seconds", 0.0)) - waited  # type: ignore[arg-type]
        error = done.get("error")
        return Watched(max(seconds, 0.0), seen, error if isinstance(error, BaseException) else None)
