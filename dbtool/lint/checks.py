"""The rules at work: one pass over a migration's statements, in the order they run.

A `Run` follows one migration (or one file no migration applies) through its statements: the tables
it has created so far (new: no lock matters on them), the indexes it builds and drops, the checks it
validates, the functions and enums it declares, the ACCESS EXCLUSIVE locks its transaction holds, and
the lock_timeout in force. Each statement yields findings; a few rules (foreign keys without an index,
locks held across statements) are judged when the migration's transaction ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import locks, nodes
from . import parse as p
from .context import Context
from .locks import ACCESS_EXCLUSIVE, LOCK_NAMES, SHARE, SYSTEM_SCHEMAS, Effect
from .parse import Node, Statement, inner, kind, strings

SERIAL_TYPES = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}


@dataclass(frozen=True)
class Finding:
    path: Path
    file: str
    line: int
    column: int
    rule: str
    message: str
    statement: int | None   # the file's top-level statement it belongs to (None: the file itself)
    reason: str | None = None  # the ignore's reason, once one waived it


@dataclass
class Holder:
    stmt: Statement
    table: str
    followers: list[Statement] = field(default_factory=list)


@dataclass
class IndexInfo:
    table: str
    columns: tuple[str | None, ...]
    usable: bool  # a btree without a predicate: it serves a foreign key's lookups


class Run:
    """One migration's statements, in order, against the catalog as it was before it."""

    def __init__(self, ctx: Context, migration: str | None, transactional: bool, enabled: set[str],
                 emit: Callable[[Finding], None]):
        self.ctx, self.migration, self.transactional, self.enabled, self._emit = ctx, migration, transactional, \
            enabled, emit
        self.created: set[str] = set()
        self.indexes: dict[str, IndexInfo] = {}     # schema.index -> created by this migration
        self.dropped: set[str] = set()              # schema.index dropped by this migration
        self.not_null: dict[str, set[str]] = {}     # table -> columns a validated check proves NOT NULL
        self.pending_checks: dict[tuple[str, str], set[str]] = {}  # (table, constraint) NOT VALID -> columns
        self.functions: dict[tuple[str, str], str] = {}
        self.enums: set[str] = set()
        self.added: dict[tuple[str, str], Node] = {}  # (table, column) added here -> its TypeName
        self.fks: list[tuple[Statement, str, tuple[str, ...], int]] = []
        self.held: dict[str, Holder] = {}
        self.search_path = ["public"]
        self.lock_timeout = ctx.lock_timeout
        self.file_lock_timeout: str | None = None
        self.set_here = False  # the file itself SETs lock_timeout
        self.stmt: Statement | None = None

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def current(self) -> Statement:
        assert self.stmt is not None, "statement() sets it"
        return self.stmt

    def finding(self, rule: str, message: str, location: int = -1, stmt: Statement | None = None) -> None:
        stmt = stmt or self.stmt
        if rule not in self.enabled or stmt is None:
            return
        line, column = stmt.at(location)
        src = stmt.file
        self._emit(Finding(src.path, src.shown, line, column, rule, message, stmt.index))

    def name(self, rv: Node) -> str:
        schema = rv.schemaname or self.search_path[0]
        return f"{schema}.{rv.relname}"

    def qualified(self, names: list[str]) -> str:
        return ".".join(names) if len(names) > 1 else f"{self.search_path[0]}.{names[0]}"

    def exists(self, table: str) -> bool:
        """Did the table exist (and may hold rows) before this migration? Tables it creates are new; a table in
        a schema the catalog covers but does not list is new too (an earlier migration of this run makes it);
        one in a schema it does not cover is assumed to exist."""
        if table in self.created:
            return False
        if self.ctx.table(table) is not None:
            return True
        schema = table.partition(".")[0]
        return schema not in self.ctx.schemas

    # -- the file loop ----------------------------------------------------------------------------
    def file_lock_timeout_of(self, src: p.SourceFile) -> str:
        """The lock_timeout dbtool sets around a file (migration_steps.ApplyFiles): its directive, else 0 for a
        `-- transactional: false` file (a CONCURRENTLY build waits for old transactions by design), else the
        migration's (--ddl-lock-timeout, 10s by default)."""
        return src.directives.get("lock_timeout") or ("0" if not src.transactional_directive
                                                      else self.ctx.lock_timeout)

    def start_file(self, src: p.SourceFile) -> None:
        self.file_lock_timeout = src.directives.get("lock_timeout")
        self.lock_timeout = self.file_lock_timeout_of(src)
        self.search_path = ["public"]
        self.set_here = False

    def end_file(self) -> None:
        if not self.transactional:
            self.end_transaction()

    def statement(self, stmt: Statement) -> None:
        if stmt.node is None:
            return
        self.stmt = stmt
        node = stmt.node
        handler = getattr(self, f"_{kind(node)}", None)
        if handler is not None:
            handler(node)
        effects = list(locks.effects(self, node))
        self._strong_lock_without_timeout(effects)
        self._follow_locks(stmt, effects)
        if not self.transactional and stmt.inside is None and not stmt.nested:
            self.end_transaction()
        elif not self.transactional and stmt.inside is not None and stmt is stmt.inside.nested[-1]:
            self.end_transaction()

    def end_transaction(self) -> None:
        for holder in self.held.values():
            if holder.followers:
                shown = ", ".join(f"{s.file.shown}:{s.line} {s.head}" if s.file is not holder.stmt.file
                                  else f"line {s.line} {s.head}" for s in holder.followers[:4])
                more = f" and {len(holder.followers) - 4} more" if len(holder.followers) > 4 else ""
                self.finding("access-exclusive-held",
                             f"{holder.stmt.head} takes ACCESS EXCLUSIVE on {holder.table}{self.ctx.size(holder.table)}"
                             f", then {len(holder.followers)} more statement(s) run in the same transaction while "
                             f"nothing can read or write it: {shown}{more}", stmt=holder.stmt)
        self.held.clear()

    def end(self) -> None:
        """The migration is over: its transaction ends."""
        self.end_transaction()

    def judge_foreign_keys(self, later: list[IndexInfo]) -> None:
        """Foreign keys whose columns lead no index: the catalog's, this migration's, or one a later
        migration of the same lint run builds (CONCURRENTLY needs a migration of its own)."""
        for stmt, table, columns, location in self.fks:
            if not self._covered(table, columns, later):
                self.finding("foreign-key-without-index",
                             f"foreign key on {table} ({', '.join(columns)}) leads no index of {table}: a DELETE or "
                             f"key UPDATE on the referenced table scans {table}{self.ctx.size(table)} for each row",
                             location, stmt)

    def built(self) -> list[IndexInfo]:
        """The indexes this migration leaves (built and not dropped)."""
        return [i for key, i in self.indexes.items() if key not in self.dropped]

    def _covered(self, table: str, columns: tuple[str, ...], later: list[IndexInfo]) -> bool:
        want = set(columns)
        candidates = [IndexInfo(table, tuple(i.key_columns), not i.partial)
                      for i in self.ctx.indexes(table) if f"{i.schema}.{i.name}" not in self.dropped
                      and "USING btree" in i.definition]
        candidates += [i for i in self.built() + later if i.table == table]
        return any(i.usable and set(i.columns[:len(columns)]) == want for i in candidates)

    # -- locks held across statements -------------------------------------------------------------
    def _follow_locks(self, stmt: Statement, effects: list[Effect]) -> None:
        if self.held and self._heavy(effects):
            for holder in self.held.values():
                if holder.stmt is not stmt:
                    holder.followers.append(stmt)
        if not self.transactional and stmt.inside is None:
            return  # each statement of a non-transactional migration commits at once
        for e in effects:
            if e.level == ACCESS_EXCLUSIVE and self.exists(e.table) and e.table not in self.held:
                self.held[e.table] = Holder(stmt, e.table)

    def _heavy(self, effects: list[Effect]) -> bool:
        """Does the statement make a held ACCESS EXCLUSIVE last longer than a catalog update? Reading or writing
        rows, building, scanning, or waiting for a lock on another existing table does; changing only catalog
        entries of tables already locked (COMMENT, a column default) or of new tables does not."""
        return any(e.table not in self.created and (e.work != "catalog" or e.table not in self.held)
                   for e in effects)

    def _strong_lock_without_timeout(self, effects: list[Effect]) -> None:
        if self.lock_timeout.strip() not in ("0", "0ms", "0s", "0min", "0h", "0d", "0us"):
            return
        strong = [e for e in effects if e.level >= SHARE and self.exists(e.table)]
        if strong:
            e = max(strong, key=lambda x: x.level)
            directive = self.file_lock_timeout == self.lock_timeout
            how = (f"the file's `-- lock_timeout: {self.file_lock_timeout}`" if directive
                   else "a SET in the file" if self.set_here else
                   "dbtool's, around a `-- transactional: false` file, where CONCURRENTLY builds wait by design")
            self.finding("lock-timeout-disabled",
                         f"{LOCK_NAMES[e.level]} on {e.table}{self.ctx.size(e.table)} is requested with lock_timeout "
                         f"0 ({how})")

    def index_table(self, names: list[str]) -> str | None:
        key = self.qualified(names)
        if key in self.indexes:
            return self.indexes[key].table
        schema, _, name = key.partition(".")
        return self.ctx.index_table(schema, name)

    # -- statements ---------------------------------------------------------------------------------
    def _IndexStmt(self, n: Node) -> None:
        table = self.name(n.relation)
        cols = tuple(inner(e).name or None for e in n.index_params)
        if n.idxname:
            self.indexes[f"{table.partition('.')[0]}.{n.idxname}"] = IndexInfo(
                table, cols, not p.has(n, "where_clause") and n.access_method in ("", "btree"))
        else:
            self.indexes[f"{table}.<{len(self.indexes)}>"] = IndexInfo(
                table, cols, not p.has(n, "where_clause") and n.access_method in ("", "btree"))
        info = self.ctx.table(table)
        only_parent = not n.relation.inh and info is not None and info.relkind == "partitioned table"
        if n.concurrent:
            self._concurrently("CREATE INDEX CONCURRENTLY")
        elif self.exists(table) and not only_parent:
            partitioned = " (partitioned: build it ON ONLY the parent, CONCURRENTLY on each partition, then ALTER " \
                "INDEX ... ATTACH PARTITION)" if info is not None and info.relkind == "partitioned table" else ""
            self.finding("create-index-not-concurrent",
                         f"CREATE INDEX {n.idxname + ' ' if n.idxname else ''}on existing table {table}"
                         f"{self.ctx.size(table)} without CONCURRENTLY blocks its writes until the index is built"
                         f"{partitioned}")

    def _concurrently(self, what: str) -> None:
        if self.transactional:
            where = f"migration {self.migration}" if self.migration else "this file (no `-- transactional: false`)"
            self.finding("concurrently-in-transaction", f"{what} inside a transaction: {where} runs in one")

    def _DropStmt(self, n: Node) -> None:
        pb = p.pb()
        for names in nodes.object_names(n):
            if n.remove_type == pb.OBJECT_INDEX:
                key = self.qualified(names)
                table = self.index_table(names)
                created_here = key in self.indexes or (table is not None and not self.exists(table))
                self.dropped.add(key)
                if n.concurrent:
                    self._concurrently("DROP INDEX CONCURRENTLY")
                elif not created_here:
                    on = f"on {table}{self.ctx.size(table)}" if table else \
                        "(an index this migration did not create, so of an existing table)"
                    self.finding("drop-index-not-concurrent",
                                 f"DROP INDEX {key} {on} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table")
            elif n.remove_type == pb.OBJECT_TABLE:
                table = self.qualified(names)
                if self.exists(table):
                    self.finding("drop-table", f"DROP TABLE {table}{self.ctx.size(table)}")
                self.created.discard(table)

    def _ReindexStmt(self, n: Node) -> None:
        pb = p.pb()
        concurrent = any(inner(o).defname == "concurrently" for o in n.params)
        if concurrent:
            self._concurrently("REINDEX CONCURRENTLY")
            return
        if n.kind == pb.REINDEX_OBJECT_TABLE:
            table: str | None = self.name(n.relation)
        elif n.kind == pb.REINDEX_OBJECT_INDEX:
            table = self.index_table([n.relation.schemaname, n.relation.relname] if n.relation.schemaname
                                      else [n.relation.relname])
        else:
            table = None
        if table is None or self.exists(table):
            target = table or (n.name or "every index of a schema or database")
            self.finding("reindex-not-concurrent", f"REINDEX of {target} without CONCURRENTLY")

    def _AlterTableStmt(self, n: Node) -> None:
        pb = p.pb()
        if n.objtype != pb.OBJECT_TABLE:
            return
        table = self.name(n.relation)
        existing = self.exists(table)
        size = self.ctx.size(table)
        for c in n.cmds:
            cmd = inner(c)
            sub, d = cmd.subtype, inner(getattr(cmd, "def"))
            if sub == pb.AT_AddColumn and d is not None:
                self._add_column(table, existing, d)
            elif sub == pb.AT_SetNotNull:
                if existing and cmd.name not in self.proven(table):
                    self.finding("set-not-null", f"SET NOT NULL on {table}.{cmd.name}{size}: no validated CHECK "
                                                 f"({cmd.name} IS NOT NULL) proves it, so the whole table is scanned")
            elif sub == pb.AT_DropColumn:
                if existing and (table, cmd.name) not in self.added:
                    self.finding("drop-column", f"DROP COLUMN {table}.{cmd.name}")
            elif sub == pb.AT_AlterColumnType and d is not None:
                self._alter_type(table, existing, cmd.name, d)
            elif sub == pb.AT_AddConstraint and d is not None:
                self._add_constraint(table, existing, d)
            elif sub == pb.AT_ValidateConstraint:
                cols = self.pending_checks.pop((table, cmd.name), None)
                if cols is None:
                    cols = next((nodes.not_null_columns(con.definition) for con in self.ctx.constraints(table)
                                 if con.name == cmd.name and con.type == "check"), set())
                self.not_null.setdefault(table, set()).update(cols)
            elif sub == pb.AT_DetachPartition and d is not None:
                if d.concurrent:
                    self._concurrently("DETACH PARTITION ... CONCURRENTLY")
                elif existing:
                    self.finding("detach-partition-not-concurrent",
                                 f"DETACH PARTITION {self.name(d.name)} from {table}{size} without CONCURRENTLY "
                                 "takes ACCESS EXCLUSIVE on the partitioned table")

    def _add_column(self, table: str, existing: bool, d: Node) -> None:
        pb = p.pb()
        self.added[(table, d.colname)] = d.type_name
        self._style_column(d, primary=any(inner(c).contype == pb.CONSTR_PRIMARY for c in d.constraints))
        for c in (inner(x) for x in d.constraints):
            if c.contype == pb.CONSTR_FOREIGN:
                self.fks.append((self.current, table, (d.colname,), c.location))
            if c.contype in (pb.CONSTR_PRIMARY, pb.CONSTR_UNIQUE):
                self.indexes[f"{table}.<{d.colname}>"] = IndexInfo(table, (d.colname,), True)
        if not existing:
            return
        size = self.ctx.size(table)
        why = self.rewrite_reason(d)
        if why:
            self.finding("add-column-rewrite", f"ADD COLUMN {d.colname} to {table}{size} rewrites the table: {why}",
                         d.location)
        for c in (inner(x) for x in d.constraints):
            if c.contype == pb.CONSTR_FOREIGN:
                self.finding("add-foreign-key-valid", f"ADD COLUMN {d.colname} ... REFERENCES {self.name(c.pktable)} "
                                                      f"on {table}{size} checks every row of {table}", c.location)
            elif c.contype == pb.CONSTR_CHECK and not c.skip_validation:
                self.finding("add-check-valid", f"ADD COLUMN {d.colname} with a CHECK on {table}{size} checks it "
                                                "against every row", c.location)
            elif c.contype == pb.CONSTR_PRIMARY:
                self.finding("add-primary-key-without-index", f"ADD COLUMN {d.colname} PRIMARY KEY on {table}{size} "
                                                              "builds its index under ACCESS EXCLUSIVE", c.location)
            elif c.contype == pb.CONSTR_UNIQUE:
                self.finding("add-unique-without-index", f"ADD COLUMN {d.colname} UNIQUE on {table}{size} builds its "
                                                         "index under ACCESS EXCLUSIVE", c.location)

    def rewrite_reason(self, d: Node) -> str | None:
        """Why adding this column rewrites the table (None: a fast default, catalog only)."""
        pb = p.pb()
        type_name = strings(d.type_name.names)[-1] if p.has(d, "type_name") else ""
        if type_name in SERIAL_TYPES:
            return f"{type_name} fills every row from nextval(), which pg_proc says is " + \
                self._volatility_word(None, "nextval")
        for c in (inner(x) for x in d.constraints):
            if c.contype == pb.CONSTR_IDENTITY:
                return "an identity column fills every row from its sequence"
            if c.contype == pb.CONSTR_GENERATED:
                return "a stored generated column is computed for every row"
            if c.contype == pb.CONSTR_DEFAULT and p.has(c, "raw_expr"):
                verdict = self.volatility(c.raw_expr)
                if verdict:
                    return verdict
        return None

    def _volatility_word(self, schema: str | None, name: str) -> str:
        v = self.function_volatility(schema, name)
        return {"v": "volatile", "s": "stable", "i": "immutable"}.get(v or "", "unknown")

    def function_volatility(self, schema: str | None, name: str) -> str | None:
        """'i', 's' or 'v' for a function name; None when nothing here can tell (no database)."""
        for key in ([(schema, name)] if schema else [(s, name) for s in self.search_path]):
            if key in self.functions:
                return self.functions[key]
        if schema not in SYSTEM_SCHEMAS:
            for s in [schema] if schema else self.search_path:
                f = self.ctx.function(s, name)
                if f is not None:
                    return f.volatility
        if self.ctx.server is not None:
            return self.ctx.server.function_volatility(schema, name)
        return None

    def volatility(self, expr: Node) -> str | None:
        """Why a default expression is volatile, per pg_proc (None: it is not: PostgreSQL stores it once and
        adds the column without a rewrite)."""
        unknown: list[str] = []
        for n in p.walk(expr):
            k = kind(n)
            if k == "FuncCall":
                names = strings(n.funcname)
                schema, name = (names[0] if len(names) > 1 else None), names[-1]
                v = self.function_volatility(schema, name)
                if v == "v":
                    return f"its default calls {'.'.join(names)}(), which pg_proc says is volatile"
                if v is None:
                    unknown.append(f"{'.'.join(names)}()")
            elif k == "A_Expr" and n.name:
                op = strings(n.name)[-1]
                if self.ctx.server is not None:
                    if self.ctx.server.operator_volatility(op) == "v":
                        return f"its default uses the operator {op}, whose function pg_proc says is volatile"
                else:
                    unknown.append(f"operator {op}")
        if unknown:
            return (f"its default uses {', '.join(unknown)}, assumed volatile: no database was given to look "
                    "it up in pg_proc (--database-url)")
        return None

    def _alter_type(self, table: str, existing: bool, column: str, d: Node) -> None:
        self._style_type(d.type_name, column, d.location)
        if not existing or (table, column) in self.added:
            return
        why = self.type_change_rewrites(table, column, d)
        if why:
            self.finding("alter-column-type-rewrite", f"ALTER COLUMN {column} TYPE {nodes.type_text(d.type_name)} on "
                                                      f"{table}{self.ctx.size(table)}: {why}", d.location)

    def type_change_rewrites(self, table: str, column: str, d: Node) -> str | None:
        old_col = next((c for c in self.ctx.columns(table) if c.name == column), None)
        if old_col is None:
            return f"the current type of {column} is unknown here, so a rewrite cannot be ruled out"
        if p.has(d, "raw_default") and not nodes.plain_using(d.raw_default, column):
            return f"USING computes every row anew ({old_col.type} to {nodes.type_text(d.type_name)})"
        old = nodes.type_of(old_col.type)
        new = d.type_name
        old_names, new_names = [x for x in strings(old.names) if x != "pg_catalog"], \
            [x for x in strings(new.names) if x != "pg_catalog"]
        same_array = bool(len(old.array_bounds)) == bool(len(new.array_bounds))
        if old_names == new_names and same_array:
            return nodes.typmod_rewrite(new_names[-1], nodes.modifiers(old), nodes.modifiers(new), old_col.type)
        if self.ctx.server is None:
            return (f"{old_col.type} to {nodes.type_text(new)} is not checked against pg_cast (no database given: "
                    "--database-url), so it counts as a rewrite")
        cast = self.ctx.server.cast(old_col.type, nodes.type_text(new, typmods=False, display=False))
        if not cast.known:
            return f"{nodes.type_text(new)} is not a type the server knows yet, so a rewrite cannot be ruled out"
        if cast.same_type:
            return nodes.typmod_rewrite(new_names[-1], nodes.modifiers(old), nodes.modifiers(new), old_col.type)
        if cast.method != "b":
            how = {"f": "a cast function", "i": "text output and input", None: "no cast: an assignment"}.get(
                cast.method, cast.method)
            return f"{old_col.type} to {cast.target} is not binary-coercible in pg_cast (it converts by {how})"
        if nodes.modifiers(new) and new_names[-1] in ("varchar", "bpchar", "varbit", "bit", "numeric"):
            return f"{old_col.type} to {nodes.type_text(new)} is binary-coercible, but every value's length is checked"
        return None

    def _add_constraint(self, table: str, existing: bool, d: Node) -> None:
        pb = p.pb()
        size = self.ctx.size(table)
        name = d.conname or "(unnamed)"
        if d.contype == pb.CONSTR_FOREIGN:
            self.fks.append((self.current, table, tuple(strings(d.fk_attrs)), d.location))
            if existing and not d.skip_validation:
                self.finding("add-foreign-key-valid",
                             f"ADD CONSTRAINT {name} FOREIGN KEY on {table}{size} without NOT VALID checks every row "
                             f"while writes to {table} and {self.name(d.pktable)} wait", d.location)
        elif d.contype == pb.CONSTR_CHECK:
            cols = nodes.not_null_columns_expr(d.raw_expr) if p.has(d, "raw_expr") else set()
            if d.skip_validation:
                self.pending_checks[(table, d.conname)] = cols
            else:
                self.not_null.setdefault(table, set()).update(cols)
                if existing:
                    self.finding("add-check-valid", f"ADD CONSTRAINT {name} CHECK on {table}{size} without NOT VALID "
                                                    "scans every row under ACCESS EXCLUSIVE", d.location)
        elif d.contype in (pb.CONSTR_PRIMARY, pb.CONSTR_UNIQUE):
            keys = tuple(strings(d.keys))
            self.indexes[f"{table}.<{name}>"] = IndexInfo(table, keys, True)
            if d.contype == pb.CONSTR_PRIMARY:
                self.not_null.setdefault(table, set()).update(keys)
            if existing and not d.indexname:
                rule = "add-primary-key-without-index" if d.contype == pb.CONSTR_PRIMARY else "add-unique-without-index"
                what = "PRIMARY KEY" if d.contype == pb.CONSTR_PRIMARY else "UNIQUE"
                self.finding(rule, f"ADD CONSTRAINT {name} {what} ({', '.join(keys)}) on {table}{size} builds its "
                                   "index under ACCESS EXCLUSIVE", d.location)

    def proven(self, table: str) -> set[str]:
        """Columns of `table` a validated CHECK proves NOT NULL (catalog, or earlier in this migration)."""
        cols = set(self.not_null.get(table, set()))
        for con in self.ctx.constraints(table):
            if con.type == "check" and con.validated:
                cols |= nodes.not_null_columns(con.definition)
        return cols

    def _RenameStmt(self, n: Node) -> None:
        pb = p.pb()
        if not p.has(n, "relation"):
            return
        table = self.name(n.relation)
        if not self.exists(table):
            return
        if n.rename_type == pb.OBJECT_TABLE:
            self.finding("rename-table", f"RENAME of table {table} to {n.newname}")
        elif n.rename_type == pb.OBJECT_COLUMN and n.relation_type == pb.OBJECT_TABLE:
            self.finding("rename-column", f"RENAME COLUMN {table}.{n.subname} to {n.newname}")

    def _TruncateStmt(self, n: Node) -> None:
        if n.behavior == p.pb().DROP_CASCADE:
            tables = ", ".join(self.name(inner(r)) for r in n.relations)
            self.finding("truncate-cascade", f"TRUNCATE {tables} CASCADE")

    def _VacuumStmt(self, n: Node) -> None:
        if n.is_vacuumcmd and any(inner(o).defname == "full" for o in n.options):
            tables = [self.name(inner(r).relation) for r in n.rels]
            if not tables or any(self.exists(t) for t in tables):
                self.finding("vacuum-full", f"VACUUM FULL {', '.join(tables) or '(every table)'}")

    def _ClusterStmt(self, n: Node) -> None:
        table = self.name(n.relation) if p.has(n, "relation") else None
        if table is None or self.exists(table):
            self.finding("cluster", f"CLUSTER {table or '(every clustered table)'}{self.ctx.size(table or '')}")

    def _AlterEnumStmt(self, n: Node) -> None:
        if not n.new_val or n.old_val:  # RENAME VALUE
            return
        name = self.qualified(strings(n.type_name))
        if name in self.enums:
            return
        if not n.new_val_neighbor:
            labels = self.ctx.catalog.enums().get(name)
            last = f" (last now: {labels.labels[-1]!r})" if labels and labels.labels else ""
            self.finding("enum-add-value-unordered",
                         f"ALTER TYPE {name} ADD VALUE {n.new_val!r} without BEFORE/AFTER goes last{last}")

    def _CreateEnumStmt(self, n: Node) -> None:
        self.enums.add(self.qualified(strings(n.type_name)))

    def _TransactionStmt(self, n: Node) -> None:
        pb = p.pb()
        if n.kind in (pb.TRANS_STMT_SAVEPOINT, pb.TRANS_STMT_RELEASE, pb.TRANS_STMT_ROLLBACK_TO):
            return
        word = pb.TransactionStmtKind.Name(n.kind).removeprefix("TRANS_STMT_").replace("_", " ")
        self.finding("transaction-control", f"{word} inside a migration file")

    def _VariableSetStmt(self, n: Node) -> None:
        pb = p.pb()
        value = None if n.kind in (pb.VAR_SET_DEFAULT, pb.VAR_RESET) else ", ".join(nodes.const_text(a) for a in n.args)
        if n.name == "lock_timeout":
            self.set_here = True
            self.lock_timeout = value if value is not None else (self.file_lock_timeout or self.ctx.lock_timeout)
        elif n.name == "search_path" and value is not None:
            self.search_path = [s.strip().strip('"') for s in value.split(",") if s.strip()] or ["public"]

    def _SelectStmt(self, n: Node) -> None:
        for f in p.walk(n):  # SELECT set_config('lock_timeout', '0', ...)
            if kind(f) == "FuncCall" and strings(f.funcname)[-1] == "set_config" and len(f.args) >= 2:
                name, value = (nodes.const_text(a) for a in list(f.args)[:2])
                if name == "lock_timeout":
                    self.set_here = True
                    self.lock_timeout = value

    def _CreateStmt(self, n: Node) -> None:
        pb = p.pb()
        table = self.name(n.relation)
        self.created.add(table)  # IF NOT EXISTS too: this migration is what creates it
        pk_cols: set[str] = set()
        for c in nodes.constraints_of_create(n):
            if c.contype == pb.CONSTR_PRIMARY:
                pk_cols |= set(strings(c.keys))
        for elt in (inner(e) for e in n.table_elts):
            if kind(elt) == "ColumnDef":
                primary = elt.colname in pk_cols or any(inner(c).contype == pb.CONSTR_PRIMARY for c in elt.constraints)
                self._style_column(elt, primary=primary)
                for c in (inner(x) for x in elt.constraints):
                    if c.contype == pb.CONSTR_FOREIGN:
                        self.fks.append((self.current, table, (elt.colname,), c.location))
                    elif c.contype in (pb.CONSTR_PRIMARY, pb.CONSTR_UNIQUE):
                        self.indexes[f"{table}.<{elt.colname}>"] = IndexInfo(table, (elt.colname,), True)
            elif kind(elt) == "Constraint":
                if elt.contype == pb.CONSTR_FOREIGN:
                    self.fks.append((self.current, table, tuple(strings(elt.fk_attrs)), elt.location))
                elif elt.contype in (pb.CONSTR_PRIMARY, pb.CONSTR_UNIQUE):
                    self.indexes[f"{table}.<{elt.conname or len(self.indexes)}>"] = IndexInfo(
                        table, tuple(strings(elt.keys)), True)

    def _CreateTableAsStmt(self, n: Node) -> None:
        self.created.add(self.name(n.into.rel))

    def _CreateFunctionStmt(self, n: Node) -> None:
        names = strings(n.funcname)
        volatility = "v"
        for o in (inner(x) for x in n.options):
            if o.defname == "volatility":
                volatility = inner(o.arg).sval[0]
        self.functions[(names[0] if len(names) > 1 else self.search_path[0], names[-1])] = volatility

    # -- style --------------------------------------------------------------------------------------
    def _style_column(self, d: Node, *, primary: bool) -> None:
        pb = p.pb()
        if not p.has(d, "type_name"):
            return
        identity = any(inner(c).contype == pb.CONSTR_IDENTITY for c in d.constraints)
        self._style_type(d.type_name, d.colname, d.location, key=primary or identity)

    def _style_type(self, t: Node, column: str, location: int, *, key: bool = False) -> None:
        names = strings(t.names)
        name = names[-1]
        system = len(names) == 1 or names[0] == "pg_catalog"
        if not system:
            return
        if name == "varchar":
            self.finding("prefer-text", f"{column} {nodes.type_text(t)}: prefer text", location)
        elif name == "bpchar":
            self.finding("prefer-text-over-char", f"{column} {nodes.type_text(t)}: prefer text", location)
        elif name == "timestamp":
            self.finding("prefer-timestamptz", f"{column} timestamp without time zone: prefer timestamptz", location)
        elif name in ("serial", "serial4", "smallserial", "serial2") or (key and name in ("int4", "int2")):
            self.finding("prefer-bigint", f"{column} {nodes.type_text(t)}: prefer bigint for a key", location)
