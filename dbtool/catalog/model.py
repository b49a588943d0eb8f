"""The catalog as a typed model: one frozen dataclass per kind of object.

Both sides of `validate` are built from the same reader (a live database, or a scratch database
that sql/ was applied to, stored as a JSON snapshot), so attributes are compared as PostgreSQL
printed them. Each attribute's metadata says how a difference counts: `error`, `warning` or
`info`; identity fields (schema, table, name) carry none. JSON is only the serialisation.

Ownership and privileges are stored relative to the object: the owner of a module object is
`<schema owner>` when it is its schema's owner, a schema's owner is `<migrator>` when it is the
role that ran the migrations, and an ACL lists `grantee:PRIVILEGE` items with the owner as
`<owner>` and PUBLIC as `PUBLIC`, defaults made explicit. So the expectation does not depend on
which role built it, while a GRANT to PUBLIC or a foreign owner is a difference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

ERROR, WARNING, INFO = "error", "warning", "info"


def attr(severity: str = ERROR, *, why: str | None = None, default: Any = None) -> Any:
    """A compared attribute: how a difference counts, and (optionally) why it matters."""
    return field(default=default, metadata={"severity": severity, "why": why})


_FIELD_NAMES: dict[type, frozenset[str]] = {}  # per class, computed once: from_json runs per object


@dataclass(frozen=True)
class Obj:
    """Anything in a module schema. `key` names it in findings: schema[.table].name."""

    KIND: ClassVar[str] = "object"
    schema: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def parent(self) -> str | None:
        """The qualified table this object belongs to (columns, indexes, ...), else None."""
        return None

    def compared(self) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(self) if f.metadata.get("severity")]

    def extra_severity(self, expected: "Catalog") -> str | None:
        """When present only on the live side: ERROR if it changes what writes or reads do; else None
        (a warning, an error under --strict)."""
        return None

    def as_json(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Obj":
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        kwargs: dict[str, Any] = {k: tuple(v) if type(v) is list else v for k, v in data.items() if k in names}
        return cls(**kwargs)


@dataclass(frozen=True)
class Child(Obj):
    """An object that belongs to a table."""

    table: str = ""

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.table}.{self.name}"

    @property
    def parent(self) -> str | None:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class Schema(Obj):
    """A module's schema (namespace)."""

    KIND: ClassVar[str] = "schema"
    owner: str | None = attr(why="the next migration fails with 'must be owner', and the owner may change anything")
    acl: tuple[str, ...] = attr(why="who may create objects in, or look up names of, the schema", default=())
    comment: str | None = attr(INFO)

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True)
class Table(Obj):
    """Tables, partitioned tables, views, materialized views and foreign tables (`relkind` says which)."""

    KIND: ClassVar[str] = "table"
    relkind: str = attr(default="table")
    persistence: str = attr(why="an UNLOGGED table is emptied by crash recovery and absent on replicas",
                            default="permanent")
    options: tuple[str, ...] = attr(why="storage parameters (autovacuum, fillfactor, view security options)",
                                    default=())
    replica_identity: str = attr(why="logical replication of UPDATE and DELETE depends on it", default="default")
    tablespace: str | None = attr()
    rls_enabled: bool = attr(why="with row-level security on, a role without a policy reads zero rows",
                             default=False)
    rls_forced: bool = attr(why="FORCE applies policies to the table owner too", default=False)
    inherits: tuple[str, ...] = attr(why="a parent's queries include the child's rows", default=())
    inherited_by: tuple[str, ...] = attr(why="tables outside the module schemas whose rows this table's scans include",
                                         default=())
    partition_key: str | None = attr()
    partition_bound: str | None = attr(why="which rows the partition takes")
    definition: str | None = attr(why="what a view or materialized view returns")
    owner: str | None = attr(why="the next migration fails with 'must be owner', and the owner bypasses grants")
    acl: tuple[str, ...] = attr(why="who may read or change the rows", default=())
    publications: tuple[str, ...] = attr(why="which logical replication publications send its changes",
                                         default=())
    comment: str | None = attr(INFO)

    def extra_severity(self, expected: "Catalog") -> str | None:
        expected_tables = expected.objects("table")
        if any(p in expected_tables for p in self.inherits):
            return ERROR  # an expected table's scans now include this table's rows
        return None


@dataclass(frozen=True)
class Column(Child):
    """A column of a table, view or foreign table."""

    KIND: ClassVar[str] = "column"
    position: int = attr(WARNING, why="INSERT or COPY without a column list writes into the wrong columns",
                         default=0)
    type: str = attr(default="")
    nullable: bool = attr(default=True)
    default: str | None = attr()
    identity: str | None = attr()
    generated: str | None = attr()
    collation: str | None = attr(why="sort order, uniqueness and index use of text")
    storage: str | None = attr(why="whether values are compressed or moved out of line")
    compression: str | None = attr(WARNING, why="how values are compressed (an explicit default reads as a change)")
    statistics: int | None = attr(WARNING, why="the planner's statistics target for this column")
    options: tuple[str, ...] = attr(WARNING, why="per-column planner options (n_distinct)", default=())
    acl: tuple[str, ...] = attr(why="column privileges: who may read or change this column", default=())
    comment: str | None = attr(INFO)

    def extra_severity(self, expected: "Catalog") -> str | None:
        if not self.nullable and self.default is None and self.identity is None and self.generated is None:
            return ERROR  # every INSERT that does not name it now fails
        return None


@dataclass(frozen=True)
class Constraint(Child):
    """Primary key, unique, check, foreign key and exclusion constraints."""

    KIND: ClassVar[str] = "constraint"
    type: str = attr(default="")
    columns: tuple[str, ...] = attr(default=())
    definition: str = attr(default="")
    validated: bool = True  # health, reported as `not_valid` rather than compared
    deferrable: bool = attr(default=False)
    initially_deferred: bool = attr(default=False)
    references: str | None = attr()
    ref_columns: tuple[str, ...] = attr(default=())
    on_update: str | None = attr()
    on_delete: str | None = attr()
    match: str | None = attr()
    enforced: bool = attr(why="with its triggers disabled (DISABLE TRIGGER ALL) a foreign key checks nothing",
                          default=True)
    comment: str | None = attr(INFO)

    def compared(self) -> list[dataclasses.Field]:
        # A foreign key's definition repeats its parts: report the part that differs, once.
        skip = {"definition"} if self.type == "foreign key" else set()
        return [f for f in super().compared() if f.name not in skip]

    def extra_severity(self, expected: "Catalog") -> str | None:
        if self.type in ("check", "foreign key", "unique", "exclusion", "primary key"):
            return ERROR  # writes the application makes may now be refused
        return None


@dataclass(frozen=True)
class Index(Child):
    """Compared by definition (columns or expressions, order, method, predicate, INCLUDE, options)."""

    KIND: ClassVar[str] = "index"
    definition: str = attr(default="")
    unique: bool = attr(default=False)
    primary: bool = False
    valid: bool = True   # health: `invalid`
    ready: bool = True   # health: `not_ready`
    constraint: str | None = None
    key_columns: tuple[str | None, ...] = ()  # from pg_index.indkey; None for an expression
    partial: bool = False
    clustered: bool = attr(WARNING, why="CLUSTER without a name uses it", default=False)
    tablespace: str | None = attr()
    comment: str | None = attr(INFO)

    def extra_severity(self, expected: "Catalog") -> str | None:
        # a unique index, or one behind a constraint (exclusion), refuses rows the application may write
        return ERROR if self.unique or self.constraint is not None else None


@dataclass(frozen=True)
class Sequence(Obj):
    """Identity, serial and standalone sequences."""

    KIND: ClassVar[str] = "sequence"
    type: str = attr(default="bigint")
    start: int = attr(default=1)
    increment: int = attr(why="ids jump, or run backwards", default=1)
    min: int = attr(default=1)
    max: int = attr(why="inserts fail once the sequence reaches it", default=0)
    cache: int = attr(WARNING, default=1)
    cycle: bool = attr(why="a cycling sequence wraps ids into key collisions", default=False)
    persistence: str = attr(why="an UNLOGGED sequence restarts after a crash: duplicate keys", default="permanent")
    owned_by: str | None = attr()
    owner: str | None = attr()
    acl: tuple[str, ...] = attr(why="who may take ids from it", default=())


@dataclass(frozen=True)
class Trigger(Child):
    """Triggers (not the internal ones behind foreign keys)."""

    KIND: ClassVar[str] = "trigger"
    definition: str = attr(default="")
    enabled: str = attr(why="a disabled or replica-only trigger does not fire for the application",
                        default="origin")

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR  # it runs on every write


@dataclass(frozen=True)
class Rule(Child):
    """Rewrite rules (not the _RETURN rule of a view)."""

    KIND: ClassVar[str] = "rule"
    definition: str = attr(why="a rule rewrites statements: DO INSTEAD NOTHING makes writes vanish", default="")
    enabled: str = attr(default="origin")

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR


@dataclass(frozen=True)
class Policy(Child):
    """Row-level security policies."""

    KIND: ClassVar[str] = "policy"
    command: str = attr(default="ALL")
    permissive: bool = attr(default=True)
    roles: tuple[str, ...] = attr(why="which roles the policy applies to", default=())
    using: str | None = attr(why="which rows the roles see")
    with_check: str | None = attr(why="which rows the roles may write")

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR  # it changes which rows roles see or may write


@dataclass(frozen=True)
class Function(Obj):
    """Functions, procedures and aggregates; the name carries the argument types."""

    KIND: ClassVar[str] = "function"
    kind: str = attr(default="function")
    returns: str | None = attr()
    language: str = attr(default="")
    volatility: str = attr(default="v")
    source: str | None = attr()
    security_definer: bool = attr(why="SECURITY DEFINER runs with the owner's rights", default=False)
    config: tuple[str, ...] = attr(why="SET search_path on a SECURITY DEFINER function stops hijacking",
                                   default=())
    strict: bool = attr(default=False)
    leakproof: bool = attr(default=False)
    parallel: str = attr(WARNING, default="u")
    cost: float = attr(WARNING, default=100.0)
    rows: float = attr(WARNING, default=0.0)
    owner: str | None = attr()
    acl: tuple[str, ...] = attr(why="who may EXECUTE it", default=())
    comment: str | None = attr(INFO)

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR if self.security_definer else None  # runs with its owner's rights; EXECUTE is PUBLIC's


@dataclass(frozen=True)
class Enum(Obj):
    """Enum types: labels in order."""

    KIND: ClassVar[str] = "enum"
    labels: tuple[str, ...] = attr(default=())
    owner: str | None = attr()
    acl: tuple[str, ...] = attr(default=())
    comment: str | None = attr(INFO)


@dataclass(frozen=True)
class Type(Obj):
    """Domains, composite and range types (enums have their own kind)."""

    KIND: ClassVar[str] = "type"
    type_kind: str = attr(default="")
    definition: str = attr(why="what values the type accepts", default="")
    owner: str | None = attr()
    acl: tuple[str, ...] = attr(default=())
    comment: str | None = attr(INFO)


@dataclass(frozen=True)
class Extension(Obj):
    """An extension whose objects live in a module schema (the name is the extension's)."""

    KIND: ClassVar[str] = "extension"
    version: str = attr(default="")


@dataclass(frozen=True)
class Statistics(Child):
    """Extended statistics (CREATE STATISTICS)."""

    KIND: ClassVar[str] = "statistics"
    definition: str = attr(default="")
    target: int | None = attr(WARNING)


@dataclass(frozen=True)
class DefaultPrivilege(Obj):
    """ALTER DEFAULT PRIVILEGES in a schema: the name is `<role>:<object type>`."""

    KIND: ClassVar[str] = "default_privilege"
    acl: tuple[str, ...] = attr(why="what objects created later will grant", default=())

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR if any(a.startswith("PUBLIC:") for a in self.acl) else None


@dataclass(frozen=True)
class Setting(Obj):
    """A setting of the database or of a role that changes what sessions do; the name is `<scope>:<setting>`."""

    KIND: ClassVar[str] = "setting"
    value: str = attr(why="session_replication_role = replica or local: no trigger and no foreign key check fires",
                      default="")

    @property
    def key(self) -> str:
        return self.name

    def extra_severity(self, expected: "Catalog") -> str | None:
        return ERROR if self.value in ("replica", "local") else None


@dataclass(frozen=True)
class Unmodeled(Obj):
    """An object pg_dump would emit that dbtool does not compare: always reported, never skipped."""

    KIND: ClassVar[str] = "unmodeled"
    what: str = ""


KINDS: tuple[type[Obj], ...] = (Schema, Extension, Enum, Type, Function, Sequence, Table, Column, Constraint,
                                Index, Trigger, Rule, Policy, Statistics, DefaultPrivilege, Setting, Unmodeled)
BY_KIND: dict[str, type[Obj]] = {k.KIND: k for k in KINDS}


@dataclass(frozen=True)
class Catalog:
    """Every object of some schemas, by kind and key. Children are reached through their table."""

    by_kind: dict[str, dict[str, Obj]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: list[Obj]) -> "Catalog":
        by_kind: dict[str, dict[str, Obj]] = {k.KIND: {} for k in KINDS}
        for o in sorted(objects, key=lambda o: o.key):
            by_kind[o.KIND][o.key] = o
        return cls(by_kind)

    def objects(self, kind: str) -> dict[str, Obj]:
        return self.by_kind.get(kind, {})

    def merged(self, other: "Catalog") -> "Catalog":
        return Catalog({k: {**self.objects(k), **other.objects(k)} for k in BY_KIND})

    # -- typed views ------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        return [t for t in self.objects("table").values() if isinstance(t, Table)]

    def table(self, schema: str, name: str) -> Table | None:
        t = self.objects("table").get(f"{schema}.{name}")
        return t if isinstance(t, Table) else None

    @cached_property
    def _children(self) -> dict[tuple[str, str | None], list[Obj]]:
        """(kind, qualified table) -> its objects: built once, so a lookup per table stays cheap."""
        out: dict[tuple[str, str | None], list[Obj]] = {}
        for kind in ("column", "constraint", "index", "trigger"):
            for o in self.objects(kind).values():
                out.setdefault((kind, o.parent), []).append(o)
        return out

    def columns(self, schema: str, table: str) -> list[Column]:
        """The table's columns in table order."""
        cols = [c for c in self._children.get(("column", f"{schema}.{table}"), []) if isinstance(c, Column)]
        return sorted(cols, key=lambda c: c.position)

    def constraints(self, schema: str, table: str) -> list[Constraint]:
        return [c for c in self._children.get(("constraint", f"{schema}.{table}"), []) if isinstance(c, Constraint)]

    def indexes(self, schema: str, table: str) -> list[Index]:
        return [i for i in self._children.get(("index", f"{schema}.{table}"), []) if isinstance(i, Index)]

    def triggers(self, schema: str, table: str) -> list[Trigger]:
        return [g for g in self._children.get(("trigger", f"{schema}.{table}"), []) if isinstance(g, Trigger)]

    def enums(self) -> dict[str, Enum]:
        """By the type's name as format_type prints it (schema-qualified)."""
        return {e.key: e for e in self.objects("enum").values() if isinstance(e, Enum)}

    # -- serialisation ---------------------------------------------------------------------------
    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {k: {key: o.as_json() for key, o in sorted(self.objects(k).items())} for k in BY_KIND}

    @classmethod
    def from_json(cls, data: dict[str, dict[str, dict[str, Any]]]) -> "Catalog":
        return cls.of([BY_KIND[kind].from_json(attrs) for kind, objs in data.items() for attrs in objs.values()])


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
