"""Which table locks a statement takes, at which level, and what work it does while holding them.

Levels are PostgreSQL's LOCKMODE numbers (LockStmt.mode uses them too); the work says whether a held
lock lasts an instant (a catalog change) or as long as the table is big (a scan, a rewrite, an index
build, rows read or written). See PostgreSQL's "Explicit Locking" and ALTER TABLE's notes on lock levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from . import nodes
from . import parse as p
from .parse import Node, inner, kind

if TYPE_CHECKING:
    from .checks import Run

# PostgreSQL's table lock levels (LOCKMODE): LockStmt.mode uses the same numbers.
ACCESS_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE = 1, 3, 4, 5, 6, 8
LOCK_NAMES = {1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE", 5: "SHARE",
              6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}
SYSTEM_SCHEMAS = {"pg_catalog", "information_schema"}


@dataclass(frozen=True)
class Effect:
    """A lock a statement takes on a table, and the work it does there while holding it."""

    table: str
    level: int
    work: str  # "catalog" (instant), "scan", "rewrite", "build" (an index), "data" (reads or writes rows)


def effects(run: Run, node: Node) -> Iterator[Effect]:
    """The table locks `node` takes, as `run` resolves names at this point of its migration."""
    k = kind(node)
    if k == "IndexStmt":
        yield Effect(run.name(node.relation), SHARE_UPDATE_EXCLUSIVE if node.concurrent else SHARE, "build")
    elif k == "AlterTableStmt" and node.objtype == p.pb().OBJECT_TABLE:
        yield from _alter_effects(run, node)
    elif k == "DropStmt":
        for names in nodes.object_names(node):
            table = run.index_table(names) if node.remove_type == p.pb().OBJECT_INDEX else (
                run.qualified(names) if node.remove_type == p.pb().OBJECT_TABLE else None)
            if table:
                yield Effect(table, SHARE_UPDATE_EXCLUSIVE if node.concurrent else ACCESS_EXCLUSIVE, "catalog")
    elif k == "RenameStmt" and p.has(node, "relation"):
        yield Effect(run.name(node.relation), ACCESS_EXCLUSIVE, "catalog")
    elif k == "TruncateStmt":
        for rv in node.relations:
            yield Effect(run.name(inner(rv)), ACCESS_EXCLUSIVE, "data")
    elif k == "VacuumStmt":
        full = any(inner(o).defname == "full" for o in node.options)
        for rel in node.rels:
            yield Effect(run.name(inner(rel).relation), ACCESS_EXCLUSIVE if full else SHARE_UPDATE_EXCLUSIVE,
                         "rewrite" if full else "scan")
    elif k == "ClusterStmt" and p.has(node, "relation"):
        yield Effect(run.name(node.relation), ACCESS_EXCLUSIVE, "rewrite")
    elif k == "ReindexStmt" and p.has(node, "relation"):
        concurrent = any(inner(o).defname == "concurrently" for o in node.params)
        table = run.name(node.relation) if node.kind == p.pb().REINDEX_OBJECT_TABLE else \
            run.index_table([node.relation.schemaname, node.relation.relname] if node.relation.schemaname
                              else [node.relation.relname])
        if table:
            yield Effect(table, SHARE_UPDATE_EXCLUSIVE if concurrent else SHARE, "build")
    elif k == "LockStmt":
        for rv in node.relations:
            yield Effect(run.name(inner(rv)), node.mode or ACCESS_EXCLUSIVE, "catalog")
    elif k == "CreateStmt":
        for parent in node.inh_relations:
            yield Effect(run.name(inner(parent)), ACCESS_EXCLUSIVE if p.has(node, "partbound")
                         else SHARE_UPDATE_EXCLUSIVE, "catalog")
        for c in nodes.constraints_of_create(node):
            if c.contype == p.pb().CONSTR_FOREIGN:
                yield Effect(run.name(c.pktable), SHARE_ROW_EXCLUSIVE, "catalog")
    elif k == "CreateTrigStmt":
        yield Effect(run.name(node.relation), SHARE_ROW_EXCLUSIVE, "catalog")
    elif k == "CommentStmt":
        return  # SHARE UPDATE EXCLUSIVE for an instant: never waits behind reads or writes
    elif k in ("InsertStmt", "UpdateStmt", "DeleteStmt", "SelectStmt", "MergeStmt", "CreateTableAsStmt",
               "CopyStmt"):
        target = run.name(node.relation) if p.has(node, "relation") else None
        for n in p.walk(node):
            if kind(n) == "RangeVar" and (n.schemaname or "") not in SYSTEM_SCHEMAS:
                name = run.name(n)
                if k == "CreateTableAsStmt" and name == target:
                    continue
                yield Effect(name, ROW_EXCLUSIVE if name == target else ACCESS_SHARE, "data")

def _alter_effects(run: Run, node: Node) -> Iterator[Effect]:
    pb = p.pb()
    table = run.name(node.relation)
    for c in node.cmds:
        cmd = inner(c)
        sub, d = cmd.subtype, inner(getattr(cmd, "def"))
        if sub == pb.AT_AddConstraint and d is not None and d.contype == pb.CONSTR_FOREIGN:
            work = "catalog" if d.skip_validation else "scan"
            yield Effect(table, SHARE_ROW_EXCLUSIVE, work)
            yield Effect(run.name(d.pktable), SHARE_ROW_EXCLUSIVE, work)
        elif sub == pb.AT_AddConstraint and d is not None:
            work = "build" if d.contype in (pb.CONSTR_PRIMARY, pb.CONSTR_UNIQUE, pb.CONSTR_EXCLUSION) and \
                not d.indexname else "scan" if d.contype == pb.CONSTR_CHECK and not d.skip_validation else "catalog"
            yield Effect(table, ACCESS_EXCLUSIVE, work)
        elif sub == pb.AT_ValidateConstraint:
            yield Effect(table, SHARE_UPDATE_EXCLUSIVE, "scan")
        elif sub == pb.AT_DetachPartition:
            concurrent = d is not None and d.concurrent
            yield Effect(table, SHARE_UPDATE_EXCLUSIVE if concurrent else ACCESS_EXCLUSIVE, "catalog")
        elif sub == pb.AT_AttachPartition:
            yield Effect(table, SHARE_UPDATE_EXCLUSIVE, "catalog")
            if d is not None:
                yield Effect(run.name(d.name), ACCESS_EXCLUSIVE, "scan")
        elif sub in (pb.AT_SetStatistics, pb.AT_SetOptions, pb.AT_ResetOptions, pb.AT_ClusterOn,
                     pb.AT_DropCluster, pb.AT_SetRelOptions, pb.AT_ResetRelOptions):
            yield Effect(table, SHARE_UPDATE_EXCLUSIVE, "catalog")
        elif sub in (pb.AT_EnableTrig, pb.AT_DisableTrig, pb.AT_EnableAlwaysTrig, pb.AT_EnableReplicaTrig,
                     pb.AT_EnableTrigAll, pb.AT_DisableTrigAll, pb.AT_EnableTrigUser, pb.AT_DisableTrigUser):
            yield Effect(table, SHARE_ROW_EXCLUSIVE, "catalog")
        elif sub == pb.AT_SetNotNull:
            yield Effect(table, ACCESS_EXCLUSIVE, "catalog" if cmd.name in run.proven(table) else "scan")
        elif sub == pb.AT_AlterColumnType:
            yield Effect(table, ACCESS_EXCLUSIVE, "rewrite")
        elif sub == pb.AT_AddColumn and d is not None:
            yield Effect(table, ACCESS_EXCLUSIVE, "rewrite" if run.rewrite_reason(d) else "catalog")
        elif sub in (pb.AT_SetLogged, pb.AT_SetUnLogged, pb.AT_SetTableSpace, pb.AT_SetAccessMethod):
            yield Effect(table, ACCESS_EXCLUSIVE, "rewrite")
        else:
            yield Effect(table, ACCESS_EXCLUSIVE, "catalog")

