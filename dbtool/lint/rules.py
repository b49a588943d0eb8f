"""The rules: an id, a group, what goes wrong and the safe alternative (as strong_migrations' README).

Groups: `default` (DBA safety: locks, rewrites, scans, breaking changes; on unless --rules says
otherwise), `style` (opt-in: --style or --rules style), and `meta` (the file cannot run, or an
ignore comment is wrong: always on, never ignorable).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT, STYLE, META = "default", "style", "meta"
GROUPS = (DEFAULT, STYLE, META)

TX_FALSE = "alone in a file marked `-- transactional: false`, in a migration with `__transactional__ = False`"


@dataclass(frozen=True)
class Rule:
    id: str
    group: str
    summary: str   # what goes wrong, in one line
    fix: str       # the safe alternative


RULES: dict[str, Rule] = {r.id: r for r in (
    # -- locks and rewrites on existing tables ----------------------------------------------------
    Rule("create-index-not-concurrent", DEFAULT,
         "CREATE INDEX without CONCURRENTLY on an existing table blocks its writes (SHARE lock) while the index builds",
         f"CREATE INDEX CONCURRENTLY, {TX_FALSE}"),
    Rule("drop-index-not-concurrent", DEFAULT,
         "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table: its reads and writes wait",
         f"DROP INDEX CONCURRENTLY, {TX_FALSE}"),
    Rule("reindex-not-concurrent", DEFAULT,
         "REINDEX without CONCURRENTLY blocks the table's writes, and reads that use the index, until it is done",
         f"REINDEX ... CONCURRENTLY, {TX_FALSE}"),
    Rule("detach-partition-not-concurrent", DEFAULT,
         "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the partitioned table",
         f"ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), {TX_FALSE}"),
    Rule("concurrently-in-transaction", DEFAULT,
         "CONCURRENTLY cannot run inside a transaction block: this migration runs in one, so it fails",
         f"put the statement {TX_FALSE}"),
    Rule("add-foreign-key-valid", DEFAULT,
         "adding a FOREIGN KEY to an existing table checks every row while blocking writes to both tables "
         "(SHARE ROW EXCLUSIVE)",
         "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later "
         "migration (it takes SHARE UPDATE EXCLUSIVE: reads and writes go on)"),
    Rule("add-check-valid", DEFAULT,
         "adding a CHECK to an existing table scans every row under ACCESS EXCLUSIVE (no reads, no writes)",
         "ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration"),
    Rule("set-not-null", DEFAULT,
         "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK (col IS NOT NULL) "
         "proves it",
         "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a later migration; then "
         "SET NOT NULL (no scan) and DROP CONSTRAINT c"),
    Rule("add-column-rewrite", DEFAULT,
         "ADD COLUMN with a volatile default (or an identity, serial or stored generated column) rewrites the "
         "whole table under ACCESS EXCLUSIVE",
         "add the column without a default (or with a constant or stable one), set the default for new rows, "
         "and fill existing rows in batches"),
    Rule("alter-column-type-rewrite", DEFAULT,
         "ALTER COLUMN TYPE to a type that is not binary-coercible (pg_cast) rewrites the table and its indexes "
         "under ACCESS EXCLUSIVE",
         "expand/contract: add a column of the new type, fill it in batches (and keep it in sync), move the "
         "application to it, then drop the old column"),
    Rule("add-primary-key-without-index", DEFAULT,
         "ADD PRIMARY KEY without USING INDEX builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE",
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT name PRIMARY KEY USING INDEX that_index"),
    Rule("add-unique-without-index", DEFAULT,
         "ADD UNIQUE without USING INDEX builds its index under ACCESS EXCLUSIVE",
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT name UNIQUE USING INDEX that_index"),
    # -- breaking changes -------------------------------------------------------------------------
    Rule("drop-table", DEFAULT,
         "dropping a table breaks every query of the running application that uses it, and its rows are gone",
         "stop using the table in the application first and deploy; drop it in a later migration, after a backup"),
    Rule("drop-column", DEFAULT,
         "dropping a column breaks the running application's queries that name it",
         "stop using the column in the application first and deploy; drop it in a later migration"),
    Rule("rename-table", DEFAULT,
         "renaming a table breaks the running application's queries at once",
         "expand/contract: create the new table (or a view under the new name), move the application, then drop "
         "the old name"),
    Rule("rename-column", DEFAULT,
         "renaming a column breaks the running application's queries at once",
         "expand/contract: add a column under the new name kept in sync, move the application, then drop the "
         "old column"),
    Rule("truncate-cascade", DEFAULT,
         "TRUNCATE ... CASCADE also empties every table that references these, recursively",
         "TRUNCATE exactly the tables you mean, by name, without CASCADE (or DELETE in batches)"),
    Rule("vacuum-full", DEFAULT,
         "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE (and cannot run in a transaction)",
         "plain VACUUM; to give space back online, pg_repack or pg_squeeze"),
    Rule("cluster", DEFAULT,
         "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
         "pg_repack --order-by, or a maintenance window"),
    Rule("enum-add-value-unordered", DEFAULT,
         "ALTER TYPE ... ADD VALUE without BEFORE or AFTER puts the label last, and an enum's order is how it "
         "sorts and compares (ORDER BY, <, min/max, indexes)",
         "say where it goes: ADD VALUE 'x' BEFORE 'y' or AFTER 'y' (AFTER the last label keeps it last on purpose)"),
    Rule("foreign-key-without-index", DEFAULT,
         "a foreign key whose columns lead no index: every DELETE or key UPDATE of the referenced table scans "
         "this table, holding locks",
         "CREATE INDEX on the referencing columns: in the same migration for a new table; CONCURRENTLY, in a "
         "`-- transactional: false` migration of its own, for an existing one"),
    Rule("access-exclusive-held", DEFAULT,
         "statements run after one takes ACCESS EXCLUSIVE on an existing table in the same transaction: nothing "
         "can read or write that table until the transaction ends",
         "take ACCESS EXCLUSIVE in the last statement of its transaction: move the other statements before it, "
         "or into a migration of their own"),
    Rule("transaction-control", DEFAULT,
         "BEGIN, COMMIT or ROLLBACK in a file: dbtool runs each migration in a transaction of its own, so this "
         "ends it halfway (and its all-or-nothing)",
         "remove it; a statement that cannot run in a transaction goes " + TX_FALSE),
    Rule("lock-timeout-disabled", DEFAULT,
         "a lock that blocks writes is requested with lock_timeout 0: while it waits, every query on the table "
         "queues behind it, without end",
         "keep dbtool's lock_timeout (--ddl-lock-timeout, 10s by default), or give the file `-- lock_timeout: 5s`"),
    # -- style (opt-in) ---------------------------------------------------------------------------
    Rule("prefer-text", STYLE,
         "varchar(n): changing n later is an ALTER TABLE, shrinking it a rewrite",
         "text, with CHECK (length(col) <= n) when a limit is a rule of the data"),
    Rule("prefer-bigint", STYLE,
         "an integer or smallint key (identity, serial, primary key) runs out at 2^31 - 1 (or 32767)",
         "bigint (bigserial, or bigint GENERATED ... AS IDENTITY)"),
    Rule("prefer-timestamptz", STYLE,
         "timestamp without time zone stores wall-clock time: the same instant reads differently per session",
         "timestamptz"),
    Rule("prefer-text-over-char", STYLE,
         "char(n) pads with spaces, which comparisons and lengths then ignore or count inconsistently",
         "text (with a CHECK on the length if it must be exact)"),
    # -- meta: the file itself, and the ignores -----------------------------------------------------
    Rule("syntax-error", META, "PostgreSQL's grammar refuses the statement (or the file cannot be read)",
         "fix the statement; `psql -f` on a scratch database shows the server's own message"),
    Rule("bad-directive", META, "a file directive migrate refuses", "see README \"Adding a table\": file directives"),
    Rule("psql-meta-command", META,
         "a psql meta-command (\\ir, \\set, ...) in a file a migration applies: migrate sends statements to the "
         "server, which refuses it",
         "write the SQL itself in the file; list other files in the migration's apply_files(...)"),
    Rule("ignore-without-reason", META, "an ignore comment without a reason waives nothing",
         "-- dbtool: ignore <rule>: <why this statement is safe here>"),
    Rule("ignore-unknown-rule", META, "an ignore comment names a rule that does not exist",
         "dbtool lint --list-rules shows the ids"),
    Rule("ignore-unused", META, "an ignore comment waives nothing: its statement does not break that rule",
         "remove the comment (or move it onto the statement it is meant for)"),
    Rule("bad-dbtool-comment", META, "a `-- dbtool:` comment that is not an ignore",
         "-- dbtool: ignore <rule>[, <rule>]: <reason>"),
)}


def select(spec: str | None, style: bool) -> set[str]:
    """The enabled rule ids: `spec` is a comma list of groups and rule ids (default: the default group);
    meta rules are always on. An unknown name raises ValueError."""
    wanted: set[str] = set()
    for name in (n.strip() for n in (spec or DEFAULT).split(",")):
        if not name:
            continue
        if name in (DEFAULT, STYLE):
            wanted |= {r.id for r in RULES.values() if r.group == name}
        elif name == "all":
            wanted |= set(RULES)
        elif name in RULES:
            wanted.add(name)
        else:
            raise ValueError(f"unknown rule or group {name!r} (groups: default, style, all; "
                             "`dbtool lint --list-rules` shows the rules)")
    if style:
        wanted |= {r.id for r in RULES.values() if r.group == STYLE}
    return wanted | {r.id for r in RULES.values() if r.group == META}
