"""What a trace found: per migration, per statement (locks, rewrites, constraints, time); as JSON-ready dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

# PostgreSQL's table lock modes, weakest first (pg_locks.mode spells them so).
MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
         "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
ACCESS_EXCLUSIVE = "AccessExclusiveLock"
KINDS = {"r": "table", "p": "partitioned table", "m": "materialized view", "i": "index", "I": "partitioned index",
         "S": "sequence", "v": "view", "f": "foreign table", "t": "TOAST table", "c": "type"}
CONSTRAINT_TYPES = {"c": "CHECK", "f": "FOREIGN KEY", "p": "PRIMARY KEY", "u": "UNIQUE", "x": "EXCLUDE",
                    "t": "CONSTRAINT TRIGGER", "n": "NOT NULL"}


@dataclass(frozen=True)
class Lock:
    relation: str
    kind: str   # table, index, sequence, ... (KINDS)
    mode: str   # pg_locks.mode
    table: str | None = None  # an index's table

    def as_dict(self) -> dict:
        return {"relation": self.relation, "kind": self.kind, "mode": self.mode, "table": self.table}


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str
    table: str | None = None  # an index's table

    def as_dict(self) -> dict:
        return {"relation": self.name, "kind": self.kind, "table": self.table}


@dataclass(frozen=True)
class ConstraintChange:
    name: str
    on: str          # the table (or domain) it belongs to
    type: str        # CHECK, FOREIGN KEY, ...
    change: str      # added, re-created, validated, dropped
    validated: bool  # pg_constraint.convalidated after the statement

    def describe(self) -> str:
        state = "" if self.change == "dropped" else " VALID" if self.validated else " NOT VALID"
        return f"{self.type} {self.name} on {self.on} {self.change}{state}"

    def as_dict(self) -> dict:
        return {"name": self.name, "on": self.on, "type": self.type, "change": self.change,
                "validated": self.validated}


@dataclass(frozen=True)
class Batches:
    """A `-- batch: N` statement's runs, each in a transaction of its own."""

    size: int
    count: int            # runs that changed rows (the last, changing none, ends it)
    rows: int
    longest_seconds: float

    def as_dict(self) -> dict:
        return {"size": self.size, "count": self.count, "rows": self.rows,
                "longest_seconds": round(self.longest_seconds, 6)}


@dataclass
class StatementTrace:
    file: str               # sql/<module>/<file>.sql, or the migration file for its own steps
    line: int | None        # the statement's first line in its file (None: a Python step)
    sql: str
    seconds: float
    lock_timeout: str
    statement_timeout: str
    locks: list[Lock] = field(default_factory=list)
    observed: str = "transaction"   # transaction: read in its transaction; sampled: watched from a second session
    rewritten: list[Relation] = field(default_factory=list)
    created: list[Relation] = field(default_factory=list)
    dropped: list[Relation] = field(default_factory=list)
    constraints: list[ConstraintChange] = field(default_factory=list)
    batches: Batches | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "sql": self.sql, "seconds": round(self.seconds, 6),
                "lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout,
                "locks": [x.as_dict() for x in self.locks], "locks_observed": self.observed,
                "rewritten": [x.as_dict() for x in self.rewritten], "created": [x.as_dict() for x in self.created],
                "dropped": [x.as_dict() for x in self.dropped],
                "constraints": [x.as_dict() for x in self.constraints],
                "batches": self.batches.as_dict() if self.batches else None}


@dataclass(frozen=True)
class Hold:
    """ACCESS EXCLUSIVE on one relation, from the statement that took it to the end of its transaction."""

    relation: str
    kind: str
    seconds: float
    since: str        # where the statement that took it is (file:line)
    statements: int   # statements run while it was held, that one included
    created_here: bool  # the relation is new in this transaction: nobody else can see it, so nobody waits
    table: str | None = None  # an index's table

    def as_dict(self) -> dict:
        return {"relation": self.relation, "kind": self.kind, "table": self.table, "seconds": round(self.seconds, 6),
                "from": self.since, "statements": self.statements, "created_here": self.created_here}


@dataclass
class MigrationTrace:
    id: str
    module: str | None
    transactional: bool
    statements: list[StatementTrace] = field(default_factory=list)
    commit_seconds: float = 0.0
    holds: list[Hold] = field(default_factory=list)
    note: str | None = None   # e.g. only some of its files were given

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.statements) + self.commit_seconds

    def as_dict(self) -> dict:
        return {"id": self.id, "module": self.module, "transactional": self.transactional,
                "seconds": round(self.seconds, 6), "commit_seconds": round(self.commit_seconds, 6),
                "note": self.note, "statements": [s.as_dict() for s in self.statements],
                "access_exclusive": [h.as_dict() for h in self.holds]}


@dataclass(frozen=True)
class Failure:
    file: str
    line: int | None
    migration: str
    message: str   # one line: file:line: what the server said (migration ...; ...)

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "migration": self.migration, "message": self.message}


@dataclass
class CopyInfo:
    name: str
    method: str
    seconds: float = 0.0
    rows: int = 0
    filled: dict[str, int] = field(default_factory=dict)
    fill_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "seconds": round(self.seconds, 3), "rows": self.rows,
                "filled": self.filled, "fill_seconds": round(self.fill_seconds, 3), "notes": self.notes}


@dataclass
class Trace:
    database: str
    lock_timeout: str
    statement_timeout: str
    copy: CopyInfo | None = None
    server_version: int | None = None
    migrations: list[MigrationTrace] = field(default_factory=list)
    failure: Failure | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"format": "dbtool.trace/1", "database": self.database, "server_version": self.server_version,
                "lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout,
                "copy": self.copy.as_dict() if self.copy else None,
                "migrations": [m.as_dict() for m in self.migrations],
                "failed": self.failure.as_dict() if self.failure else None, "seconds": round(self.seconds, 3)}
