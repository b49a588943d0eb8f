"""`dbtool validate` against a table of catalog mutations: each one exactly the findings it must give.

Every row runs in its own freshly migrated database (the `db_url` fixture): its statements are
applied one by one (autocommit: CREATE INDEX CONCURRENTLY and VACUUM need it), the live catalog is
read once, and what `validate` does with it (diff against the committed snapshot) runs without and
with `strict`: the findings (severity, kind, object, problem, attribute) must be exactly the row's,
in both modes. Under `strict` an extra, renamed or unmodeled object that is a warning becomes an
error; nothing else changes. The exit code follows (1 when any finding is an error): the rows marked
`cli` also go through the real CLI (`dbtool validate --format json`, with and without --strict),
and one test checks that the library's `validate` gives what the rows compute.

Rows with a `baseline` compare against the catalog read after the baseline statements instead of
the committed snapshot: the modules have no view, partition, policy, rule, domain or extended
statistics, so those attributes are checked against an expectation made of the same reader.

A row whose expectation the tool does not meet by the standard of a production DBA (a silent blind
spot, a wrong severity) keeps the right expectation and is marked xfail(strict=True) with the reason:
it starts failing the suite (XPASS) once dbtool is fixed, to be unmarked then.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from dbtool.catalog.diff import diff
from dbtool.catalog.read import read_catalog
from dbtool.catalog.validate import expected_catalog, validate
from dbtool.config import Target
from dbtool.paths import module_sql_files, modules
from dbtool.psql_entry import psql_options
from helpers import run_dbtool

ERROR, WARNING, INFO = "error", "warning", "info"
MODULES = modules()
PROMOTED_BY_STRICT = ("extra", "renamed", "unmodeled")

Finding = tuple[str, str, str, str, "str | None"]  # severity, kind, object, problem, attribute


def E(kind: str, obj: str, problem: str = "differs", attribute: str | None = None) -> Finding:
    return (ERROR, kind, obj, problem, attribute)


def W(kind: str, obj: str, problem: str = "differs", attribute: str | None = None) -> Finding:
    return (WARNING, kind, obj, problem, attribute)


def I(kind: str, obj: str, attribute: str = "comment") -> Finding:  # noqa: E743 (info)
    return (INFO, kind, obj, "differs", attribute)


@dataclass(frozen=True)
class Fails:
    """A statement that must fail (what it leaves behind is the mutation)."""

    sql: str


@dataclass(frozen=True)
class Step:
    """Anything that is not one SQL statement: called with the database URL."""

    what: str
    run: Callable[[str], None]


@dataclass(frozen=True)
class Mutation:
    id: str
    sql: tuple
    findings: tuple[Finding, ...] = ()
    baseline: tuple[str, ...] = ()
    xfail: str | None = None  # what dbtool gets wrong; the findings are what it should report
    cli: bool = False  # also run through the real CLI (exit codes with and without --strict)


def M(id: str, sql, *findings: Finding, baseline=(), xfail=None, cli=False) -> Mutation:
    sql = (sql,) if isinstance(sql, (str, Fails, Step)) else tuple(sql)
    baseline = (baseline,) if isinstance(baseline, str) else tuple(baseline)
    return Mutation(id, sql, tuple(findings), baseline, xfail, cli)


# -- non-SQL steps ----------------------------------------------------------------------------------
def _seed(url: str) -> None:
    out = run_dbtool("seed", "--database-url", url)
    assert out.returncode == 0, out.stderr


def _seed_and_clear(url: str) -> None:
    _seed(url)
    out = run_dbtool("seed", "--clear", "--database-url", url)
    assert out.returncode == 0, out.stderr


def _reapply_module(module: str) -> Step:
    def run(url: str) -> None:
        # As `psql -f sql/<module>.psql` with the options its header gives: one transaction (-1), unless a file
        # must run outside one (CREATE INDEX CONCURRENTLY); then each file is its own.
        with psycopg.connect(url, autocommit="-1" not in psql_options(module)) as conn:
            for path in module_sql_files(module):
                conn.execute(path.read_text(encoding="utf-8"))
    return Step(f"re-apply sql/{module}", run)


CREATE_FDW_SERVER = ("CREATE FOREIGN DATA WRAPPER mut_fdw", "CREATE SERVER mut_server FOREIGN DATA WRAPPER mut_fdw")

MUTATIONS: list[Mutation] = [
    # -- schemas ----------------------------------------------------------------------------------------
    M("schema-grant-create-to-public", "GRANT CREATE ON SCHEMA crm TO PUBLIC",
      E("schema", "crm", "differs", "acl"), cli=True),
    M("schema-grant-usage-to-public", "GRANT USAGE ON SCHEMA infra TO PUBLIC",
      E("schema", "infra", "differs", "acl")),
    M("schema-revoke-usage-from-module-role", "REVOKE USAGE ON SCHEMA crm FROM crm_ro",
      E("schema", "crm", "differs", "acl")),
    M("schema-grant-create-to-module-role", "GRANT CREATE ON SCHEMA planning TO planning_rw",
      E("schema", "planning", "differs", "acl")),
    M("schema-owner-to-other-role", "ALTER SCHEMA planning OWNER TO {role}",
      E("schema", "planning", "differs", "owner"),
      xfail="module objects' owners are written relative to the schema owner: a new schema owner also "
            "reports every table, sequence and function as 'owner differs' (found: the migrator, who still "
            "owns them), 9 errors for one change"),
    M("schema-comment-changed", "COMMENT ON SCHEMA crm IS 'changed by hand'",
      I("schema", "crm"), cli=True),

    # -- tables -----------------------------------------------------------------------------------------
    M("table-set-unlogged", "ALTER TABLE planning.historical_sales SET UNLOGGED",
      E("table", "planning.historical_sales", "differs", "persistence")),
    M("table-autovacuum-disabled", "ALTER TABLE crm.order_line SET (autovacuum_enabled = false)",
      E("table", "crm.order_line", "differs", "options")),
    M("table-fillfactor", "ALTER TABLE crm.customer SET (fillfactor = 70)",
      E("table", "crm.customer", "differs", "options")),
    M("table-toast-autovacuum-disabled", "ALTER TABLE crm.reco_run SET (toast.autovacuum_enabled = false)",
      E("table", "crm.reco_run", "differs", "options"),
      xfail="toast.* storage parameters live on the TOAST table (pg_class.reloptions of reltoastrelid): "
            "autovacuum switched off for the TOAST table is not seen"),
    M("table-replica-identity-full", "ALTER TABLE crm.customer REPLICA IDENTITY FULL",
      E("table", "crm.customer", "differs", "replica_identity")),
    M("table-replica-identity-nothing", "ALTER TABLE crm.product REPLICA IDENTITY NOTHING",
      E("table", "crm.product", "differs", "replica_identity")),
    M("table-replica-identity-using-index",
      "ALTER TABLE chatbot.users REPLICA IDENTITY USING INDEX users_phone_number_key",
      E("table", "chatbot.users", "differs", "replica_identity")),
    M("table-rls-enabled", "ALTER TABLE crm.customer ENABLE ROW LEVEL SECURITY",
      E("table", "crm.customer", "differs", "rls_enabled")),
    M("table-rls-forced", "ALTER TABLE crm.customer FORCE ROW LEVEL SECURITY",
      E("table", "crm.customer", "differs", "rls_forced")),
    M("table-extra-policy", "CREATE POLICY customer_all ON crm.customer USING (true)",
      E("policy", "crm.customer.customer_all", "extra")),
    M("table-extra-policy-with-rls",
      ["ALTER TABLE crm.customer ENABLE ROW LEVEL SECURITY",
       "CREATE POLICY contactable ON crm.customer FOR SELECT TO crm_ro USING (is_contactable)"],
      E("table", "crm.customer", "differs", "rls_enabled"),
      E("policy", "crm.customer.contactable", "extra")),
    M("table-child-inherits-expected-table", "CREATE TABLE crm.customer_archive () INHERITS (crm.customer)",
      E("table", "crm.customer_archive", "extra")),
    M("table-child-in-public-inherits-expected-table",
      "CREATE TABLE public.customer_shadow () INHERITS (crm.customer)",
      E("table", "crm.customer", "differs", "inherited_by"),
      xfail="a child table outside the module schemas adds its rows to every scan of crm.customer, and "
            "nothing in the module schemas changes: only the child records the inheritance"),
    M("table-expected-table-inherits-extra-parent",
      ["CREATE TABLE crm.audit_base ()", "ALTER TABLE crm.audit_item INHERIT crm.audit_base"],
      W("table", "crm.audit_base", "extra"),
      E("table", "crm.audit_item", "differs", "inherits")),
    M("table-attached-as-partition",
      ["CREATE TABLE planning.clusters_all (LIKE planning.store_clusters) PARTITION BY LIST (cluster_id)",
       "ALTER TABLE planning.clusters_all ATTACH PARTITION planning.store_clusters DEFAULT"],
      W("table", "planning.clusters_all", "extra"),
      E("table", "planning.store_clusters", "differs", "inherits"),
      E("table", "planning.store_clusters", "differs", "partition_bound")),
    M("table-extra-partitioned-table",
      ["CREATE TABLE crm.event_log (id bigint, at date NOT NULL) PARTITION BY RANGE (at)",
       "CREATE TABLE crm.event_log_2024 PARTITION OF crm.event_log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"],
      W("table", "crm.event_log", "extra"),
      W("table", "crm.event_log_2024", "extra")),
    M("table-extra-plain-table", "CREATE TABLE crm.scratch (id int)",
      W("table", "crm.scratch", "extra"), cli=True),
    M("table-extra-view",
      "CREATE VIEW crm.contactable AS SELECT customer_code, email FROM crm.customer WHERE is_contactable",
      W("table", "crm.contactable", "extra")),
    M("table-extra-materialized-view",
      "CREATE MATERIALIZED VIEW crm.product_families AS SELECT DISTINCT family_crm FROM crm.product",
      W("table", "crm.product_families", "extra")),
    M("table-extra-foreign-table",
      [*CREATE_FDW_SERVER, "CREATE FOREIGN TABLE crm.remote_orders (id bigint) SERVER mut_server"],
      W("table", "crm.remote_orders", "extra")),
    M("table-owner-to-other-role", "ALTER TABLE crm.customer OWNER TO {role}",
      E("table", "crm.customer", "differs", "owner")),
    M("table-owner-moves-identity-sequence", "ALTER TABLE crm.order_line OWNER TO {role}",
      E("sequence", "crm.order_line_id_seq", "differs", "owner"),
      E("table", "crm.order_line", "differs", "owner")),
    M("table-grant-select-to-public", "GRANT SELECT ON crm.customer TO PUBLIC",
      E("table", "crm.customer", "differs", "acl")),
    M("table-grant-select-to-role", "GRANT SELECT ON chatbot.users TO {role}",
      E("table", "chatbot.users", "differs", "acl")),
    M("table-revoke-delete-from-module-role", "REVOKE DELETE ON crm.order_line FROM crm_rw",
      E("table", "crm.order_line", "differs", "acl")),
    M("table-revoke-select-from-module-role", "REVOKE SELECT ON infra.customers FROM infra_ro",
      E("table", "infra.customers", "differs", "acl")),
    M("table-grant-truncate-to-module-role", "GRANT TRUNCATE ON planning.stores TO planning_rw",
      E("table", "planning.stores", "differs", "acl")),
    M("table-grant-with-grant-option", "GRANT SELECT ON planning.stores TO planning_ro WITH GRANT OPTION",
      E("table", "planning.stores", "differs", "acl")),
    M("table-owner-revokes-own-privilege", "REVOKE TRUNCATE ON crm.product FROM CURRENT_USER",
      E("table", "crm.product", "differs", "acl")),
    M("table-added-to-publication", "CREATE PUBLICATION mut_pub FOR TABLE crm.customer",
      E("table", "crm.customer", "differs", "publications")),
    M("table-comment-changed", "COMMENT ON TABLE crm.customer IS 'changed by hand'",
      I("table", "crm.customer")),

    # -- columns ----------------------------------------------------------------------------------------
    M("column-type-changed", "ALTER TABLE crm.customer ALTER COLUMN email TYPE text",
      E("column", "crm.customer.email", "differs", "type")),
    M("column-length-changed", "ALTER TABLE crm.customer ALTER COLUMN first_name TYPE varchar(300)",
      E("column", "crm.customer.first_name", "differs", "type")),
    M("column-precision-changed", "ALTER TABLE crm.order_line ALTER COLUMN amount_ht TYPE numeric(14,2)",
      E("column", "crm.order_line.amount_ht", "differs", "type")),
    M("column-drop-not-null", "ALTER TABLE crm.order_line ALTER COLUMN amount_ht DROP NOT NULL",
      E("column", "crm.order_line.amount_ht", "differs", "nullable")),
    M("column-set-not-null", "ALTER TABLE crm.customer ALTER COLUMN email SET NOT NULL",
      E("column", "crm.customer.email", "differs", "nullable")),
    M("column-default-changed", "ALTER TABLE crm.order_line ALTER COLUMN quantity SET DEFAULT 2",
      E("column", "crm.order_line.quantity", "differs", "default")),
    M("column-default-dropped", "ALTER TABLE crm.product ALTER COLUMN is_active DROP DEFAULT",
      E("column", "crm.product.is_active", "differs", "default")),
    M("column-default-added", "ALTER TABLE crm.customer ALTER COLUMN email SET DEFAULT ''",
      E("column", "crm.customer.email", "differs", "default")),
    M("column-identity-always", "ALTER TABLE crm.order_line ALTER COLUMN id SET GENERATED ALWAYS",
      E("column", "crm.order_line.id", "differs", "identity")),
    M("column-identity-dropped", "ALTER TABLE crm.order_line ALTER COLUMN id DROP IDENTITY",
      E("column", "crm.order_line.id", "differs", "identity"),
      E("sequence", "crm.order_line_id_seq", "missing")),
    M("column-identity-added", "ALTER TABLE crm.reco_item ALTER COLUMN rank ADD GENERATED BY DEFAULT AS IDENTITY",
      E("column", "crm.reco_item.rank", "differs", "identity"),
      W("sequence", "crm.reco_item_rank_seq", "extra")),
    M("column-becomes-generated",
      ["ALTER TABLE crm.order_line DROP COLUMN amount_ttc",
       "ALTER TABLE crm.order_line ADD COLUMN amount_ttc numeric(12,2) GENERATED ALWAYS AS (amount_ht * 1.2) STORED"],
      E("column", "crm.order_line.amount_ttc", "differs", "generated"),
      W("column", "crm.order_line.amount_ttc", "differs", "position"),
      I("column", "crm.order_line.amount_ttc")),
    M("column-collation-c", 'ALTER TABLE crm.customer ALTER COLUMN email TYPE varchar(512) COLLATE "C"',
      E("column", "crm.customer.email", "differs", "collation")),
    M("column-storage-external", "ALTER TABLE crm.reco_run ALTER COLUMN error_message SET STORAGE EXTERNAL",
      E("column", "crm.reco_run.error_message", "differs", "storage")),
    M("column-storage-main", "ALTER TABLE chatbot.messages ALTER COLUMN content SET STORAGE MAIN",
      E("column", "chatbot.messages.content", "differs", "storage")),
    M("column-compression-pglz", "ALTER TABLE crm.reco_run ALTER COLUMN error_message SET COMPRESSION pglz",
      W("column", "crm.reco_run.error_message", "differs", "compression")),
    M("column-statistics-target", "ALTER TABLE crm.order_line ALTER COLUMN order_date SET STATISTICS 1000",
      W("column", "crm.order_line.order_date", "differs", "statistics"), cli=True),
    M("column-attribute-options-n-distinct",
      "ALTER TABLE crm.order_line ALTER COLUMN product_key SET (n_distinct = 500)",
      W("column", "crm.order_line.product_key", "differs", "options"),
      xfail="per-column planner options (pg_attribute.attoptions: n_distinct, n_distinct_inherited) are not "
            "read, while the statistics target next to them is a warning"),
    M("column-grant-select-to-public", "GRANT SELECT (email) ON crm.customer TO PUBLIC",
      E("column", "crm.customer.email", "differs", "acl")),
    M("column-grant-update-to-module-role", "GRANT UPDATE (is_optout) ON crm.customer TO crm_ro",
      E("column", "crm.customer.is_optout", "differs", "acl")),
    M("column-order-changed",
      ["ALTER TABLE crm.customer DROP COLUMN last_name",
       "ALTER TABLE crm.customer ADD COLUMN last_name varchar(255)",
       "COMMENT ON COLUMN crm.customer.last_name IS 'Last name. [personal data]'"],  # sql/crm/150_personal_data.sql
      W("column", "crm.customer.last_name", "differs", "position")),
    M("column-extra-not-null-without-default", "ALTER TABLE crm.customer ADD COLUMN tenant_id integer NOT NULL",
      E("column", "crm.customer.tenant_id", "extra")),
    M("column-extra-not-null-with-default",
      "ALTER TABLE crm.customer ADD COLUMN tenant_id integer NOT NULL DEFAULT 1",
      W("column", "crm.customer.tenant_id", "extra")),
    M("column-extra-nullable", "ALTER TABLE crm.customer ADD COLUMN nickname text",
      W("column", "crm.customer.nickname", "extra")),
    M("column-extra-identity",
      "ALTER TABLE planning.store_clusters ADD COLUMN seq_no bigint GENERATED ALWAYS AS IDENTITY",
      W("column", "planning.store_clusters.seq_no", "extra"),
      W("sequence", "planning.store_clusters_seq_no_seq", "extra")),
    M("column-extra-generated",
      "ALTER TABLE crm.order_line ADD COLUMN amount_vat numeric GENERATED ALWAYS AS (amount_ttc - amount_ht) STORED",
      W("column", "crm.order_line.amount_vat", "extra")),
    M("column-dropped", "ALTER TABLE crm.customer DROP COLUMN updated_at",
      E("column", "crm.customer.updated_at", "missing")),
    M("column-renamed", "ALTER TABLE crm.customer RENAME COLUMN first_name TO given_name",
      E("column", "crm.customer.first_name", "missing"),
      W("column", "crm.customer.given_name", "extra")),
    M("column-comment-changed", "COMMENT ON COLUMN crm.customer.email IS 'changed by hand'",
      I("column", "crm.customer.email")),

    # -- constraints ------------------------------------------------------------------------------------
    M("check-definition-changed",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
       "ALTER TABLE crm.product ADD CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 5)"],
      E("constraint", "crm.product.product_premium_tier_check", "differs", "definition")),
    M("check-dropped", "ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
      E("constraint", "crm.product.product_premium_tier_check", "missing")),
    M("check-extra", "ALTER TABLE crm.customer ADD CONSTRAINT customer_email_check CHECK (email LIKE '%@%')",
      E("constraint", "crm.customer.customer_email_check", "extra")),
    M("check-extra-not-valid",
      "ALTER TABLE crm.customer ADD CONSTRAINT customer_email_check CHECK (email LIKE '%@%') NOT VALID",
      E("constraint", "crm.customer.customer_email_check", "not_valid"),
      E("constraint", "crm.customer.customer_email_check", "extra")),
    M("check-recreated-not-valid",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
       "ALTER TABLE crm.product ADD CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 3) "
       "NOT VALID"],
      E("constraint", "crm.product.product_premium_tier_check", "not_valid")),
    M("check-no-inherit",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
       "ALTER TABLE crm.product ADD CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 3) "
       "NO INHERIT"],
      E("constraint", "crm.product.product_premium_tier_check", "differs", "definition")),
    M("check-renamed",
      "ALTER TABLE crm.product RENAME CONSTRAINT product_premium_tier_check TO product_tier_check",
      E("constraint", "crm.product.product_premium_tier_check", "missing"),
      E("constraint", "crm.product.product_tier_check", "extra")),
    M("fk-dropped", "ALTER TABLE crm.order_line DROP CONSTRAINT order_line_product_key_fkey",
      E("constraint", "crm.order_line.order_line_product_key_fkey", "missing")),
    M("fk-on-delete-changed",
      ["ALTER TABLE crm.order_line DROP CONSTRAINT order_line_customer_code_fkey",
       "ALTER TABLE crm.order_line ADD CONSTRAINT order_line_customer_code_fkey FOREIGN KEY (customer_code) "
       "REFERENCES crm.customer (customer_code) ON DELETE RESTRICT"],
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "on_delete")),
    M("fk-on-update-changed",
      ["ALTER TABLE crm.order_line DROP CONSTRAINT order_line_customer_code_fkey",
       "ALTER TABLE crm.order_line ADD CONSTRAINT order_line_customer_code_fkey FOREIGN KEY (customer_code) "
       "REFERENCES crm.customer (customer_code) ON DELETE CASCADE ON UPDATE CASCADE"],
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "on_update")),
    M("fk-match-full",
      ["ALTER TABLE crm.order_line DROP CONSTRAINT order_line_customer_code_fkey",
       "ALTER TABLE crm.order_line ADD CONSTRAINT order_line_customer_code_fkey FOREIGN KEY (customer_code) "
       "REFERENCES crm.customer (customer_code) MATCH FULL ON DELETE CASCADE"],
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "match")),
    M("fk-deferrable-initially-deferred",
      "ALTER TABLE crm.order_line ALTER CONSTRAINT order_line_customer_code_fkey DEFERRABLE INITIALLY DEFERRED",
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "deferrable"),
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "initially_deferred")),
    M("fk-deferrable-initially-immediate",
      "ALTER TABLE crm.order_line ALTER CONSTRAINT order_line_customer_code_fkey DEFERRABLE",
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "deferrable")),
    M("fk-recreated-not-valid",
      ["ALTER TABLE crm.order_line DROP CONSTRAINT order_line_product_key_fkey",
       "ALTER TABLE crm.order_line ADD CONSTRAINT order_line_product_key_fkey FOREIGN KEY (product_key) "
       "REFERENCES crm.product (product_key) NOT VALID"],
      E("constraint", "crm.order_line.order_line_product_key_fkey", "not_valid")),
    M("fk-referenced-columns-changed",
      ["ALTER TABLE crm.product_alias DROP CONSTRAINT product_alias_product_key_fkey",
       "ALTER TABLE crm.product_alias ADD CONSTRAINT product_alias_product_key_fkey FOREIGN KEY (product_key) "
       "REFERENCES crm.product (product_label) ON DELETE CASCADE"],
      E("constraint", "crm.product_alias.product_alias_product_key_fkey", "differs", "ref_columns")),
    M("fk-extra",
      "ALTER TABLE chatbot.messages ADD CONSTRAINT messages_message_id_fkey FOREIGN KEY (message_id) "
      "REFERENCES chatbot.sessions (session_id)",
      E("constraint", "chatbot.messages.messages_message_id_fkey", "extra")),
    M("fk-from-outside-references-expected-table",
      "CREATE TABLE public.customer_refs (customer_code varchar(255) REFERENCES crm.customer)",
      E("constraint", "public.customer_refs.customer_refs_customer_code_fkey", "extra"),
      xfail="a foreign key from a table outside the module schemas now refuses DELETEs (and key UPDATEs) of "
            "crm.customer rows it references: only constraints whose own table is in a module schema are read"),
    M("fk-triggers-disabled", "ALTER TABLE crm.order_line DISABLE TRIGGER ALL",
      E("constraint", "crm.order_line.order_line_customer_code_fkey", "differs", "enforced"),
      E("constraint", "crm.order_line.order_line_product_key_fkey", "differs", "enforced"),
      E("trigger", "crm.order_line.order_line_set_updated_at", "differs", "enabled"),  # ALL: the user's too
      xfail="ALTER TABLE ... DISABLE TRIGGER ALL turns the foreign keys' internal triggers off: their rows are "
            "no longer checked, and the trigger query skips internal triggers (tgisinternal)"),
    M("unique-made-deferrable",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_product_label_key",
       "ALTER TABLE crm.product ADD CONSTRAINT product_product_label_key UNIQUE (product_label) DEFERRABLE"],
      E("constraint", "crm.product.product_product_label_key", "differs", "definition"),
      E("constraint", "crm.product.product_product_label_key", "differs", "deferrable")),
    M("unique-extra",
      "ALTER TABLE crm.customer ADD CONSTRAINT customer_email_key UNIQUE (email)",
      E("constraint", "crm.customer.customer_email_key", "extra")),  # once: not again as its index
    M("exclusion-extra",
      "ALTER TABLE planning.workflows ADD CONSTRAINT workflows_name_excl EXCLUDE USING btree (name WITH =)",
      E("constraint", "planning.workflows.workflows_name_excl", "extra"),
      xfail="the index behind an extra exclusion constraint refuses rows like a unique index does, but "
            "Index.extra_severity only looks at indisunique: a warning"),
    M("primary-key-dropped", "ALTER TABLE planning.store_clusters DROP CONSTRAINT store_clusters_pkey CASCADE",
      E("constraint", "planning.store_clusters.store_clusters_pkey", "missing"),
      E("index", "planning.store_clusters.store_clusters_pkey", "missing"),
      E("constraint", "planning.stores.stores_cluster_id_fkey", "missing")),
    M("constraint-comment-changed",
      "COMMENT ON CONSTRAINT product_premium_tier_check ON crm.product IS 'changed by hand'",
      I("constraint", "crm.product.product_premium_tier_check")),

    # -- indexes ----------------------------------------------------------------------------------------
    M("index-dropped", "DROP INDEX crm.ix_customer_email",
      E("index", "crm.customer.ix_customer_email", "missing")),
    M("index-other-columns",
      ["DROP INDEX crm.ix_customer_email", "CREATE INDEX ix_customer_email ON crm.customer (email, batch_id)"],
      E("index", "crm.customer.ix_customer_email", "differs", "definition")),
    M("index-other-method",
      ["DROP INDEX crm.ix_customer_email", "CREATE INDEX ix_customer_email ON crm.customer USING hash (email)"],
      E("index", "crm.customer.ix_customer_email", "differs", "definition")),
    M("index-descending",
      ["DROP INDEX crm.order_line_order_date_idx",
       "CREATE INDEX order_line_order_date_idx ON crm.order_line (order_date DESC)"],
      E("index", "crm.order_line.order_line_order_date_idx", "differs", "definition")),
    M("index-other-predicate",
      ["DROP INDEX crm.customer_customer_code_idx",
       "CREATE INDEX customer_customer_code_idx ON crm.customer (customer_code) WHERE is_contactable"],
      E("index", "crm.customer.customer_customer_code_idx", "differs", "definition"),
      I("index", "crm.customer.customer_customer_code_idx")),
    M("index-include-column",
      ["DROP INDEX crm.ix_customer_email", "CREATE INDEX ix_customer_email ON crm.customer (email) INCLUDE (batch_id)"],
      E("index", "crm.customer.ix_customer_email", "differs", "definition")),
    M("index-fillfactor", "ALTER INDEX crm.ix_customer_email SET (fillfactor = 50)",
      E("index", "crm.customer.ix_customer_email", "differs", "definition")),
    M("index-renamed", "ALTER INDEX crm.ix_customer_email RENAME TO customer_email_idx",
      W("index", "crm.customer.ix_customer_email", "renamed", "name"), cli=True),
    M("index-invalid-after-failed-concurrent-build",
      ["INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'same'), ('b', 'same')",
       Fails("CREATE UNIQUE INDEX CONCURRENTLY store_clusters_name_uq ON planning.store_clusters (cluster_name)")],
      E("index", "planning.store_clusters.store_clusters_name_uq", "invalid"),
      E("index", "planning.store_clusters.store_clusters_name_uq", "extra"), cli=True),
    M("index-invalid-plain-after-failed-concurrent-build",
      ["INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', '0')",
       Fails("CREATE INDEX CONCURRENTLY store_clusters_ratio_idx ON planning.store_clusters "
             "((1 / cluster_name::int))")],
      E("index", "planning.store_clusters.store_clusters_ratio_idx", "invalid"),
      W("index", "planning.store_clusters.store_clusters_ratio_idx", "extra")),
    M("index-expected-marked-invalid",
      "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'crm.ix_customer_email'::regclass",
      E("index", "crm.customer.ix_customer_email", "invalid")),
    M("index-expected-not-ready",
      "UPDATE pg_index SET indisready = false WHERE indexrelid = 'crm.ix_customer_email'::regclass",
      E("index", "crm.customer.ix_customer_email", "not_ready")),
    M("index-extra-unique", "CREATE UNIQUE INDEX customer_email_uq ON crm.customer (email)",
      E("index", "crm.customer.customer_email_uq", "extra")),
    M("index-extra-partial-unique",
      "CREATE UNIQUE INDEX customer_email_uq ON crm.customer (lower(email)) WHERE is_contactable",
      E("index", "crm.customer.customer_email_uq", "extra")),
    M("index-extra-plain", "CREATE INDEX customer_last_name_idx ON crm.customer (last_name)",
      W("index", "crm.customer.customer_last_name_idx", "extra")),
    M("index-cluster-on", "ALTER TABLE crm.order_line CLUSTER ON order_line_order_date_idx",
      W("index", "crm.order_line.order_line_order_date_idx", "differs", "clustered")),
    M("index-cluster-using", "CLUSTER crm.order_line USING order_line_pkey",
      W("index", "crm.order_line.order_line_pkey", "differs", "clustered")),
    M("index-comment-changed", "COMMENT ON INDEX crm.ix_customer_email IS 'changed by hand'",
      I("index", "crm.customer.ix_customer_email")),

    # -- sequences --------------------------------------------------------------------------------------
    M("sequence-maxvalue", "ALTER SEQUENCE crm.order_line_id_seq MAXVALUE 1000",
      E("sequence", "crm.order_line_id_seq", "differs", "max")),
    M("sequence-minvalue", "ALTER SEQUENCE crm.order_line_id_seq MINVALUE 0 START 1",
      E("sequence", "crm.order_line_id_seq", "differs", "min")),
    M("sequence-cycle", "ALTER SEQUENCE crm.order_line_id_seq CYCLE",
      E("sequence", "crm.order_line_id_seq", "differs", "cycle")),
    M("sequence-increment", "ALTER SEQUENCE crm.order_line_id_seq INCREMENT BY 10",
      E("sequence", "crm.order_line_id_seq", "differs", "increment")),
    M("sequence-increment-negative", "ALTER SEQUENCE chatbot.users_id_seq INCREMENT BY -1 MINVALUE -100 START -1",
      E("sequence", "chatbot.users_id_seq", "differs", "increment"),
      E("sequence", "chatbot.users_id_seq", "differs", "min"),
      E("sequence", "chatbot.users_id_seq", "differs", "start")),
    M("sequence-increment-through-identity", "ALTER TABLE crm.order_line ALTER COLUMN id SET INCREMENT BY 2",
      E("sequence", "crm.order_line_id_seq", "differs", "increment")),
    M("sequence-cache", "ALTER SEQUENCE crm.order_line_id_seq CACHE 50",
      W("sequence", "crm.order_line_id_seq", "differs", "cache")),
    M("sequence-start", "ALTER SEQUENCE crm.order_line_id_seq START WITH 1000",
      E("sequence", "crm.order_line_id_seq", "differs", "start")),
    M("sequence-as-integer", "ALTER SEQUENCE crm.order_line_id_seq AS integer",
      E("sequence", "crm.order_line_id_seq", "differs", "type"),
      E("sequence", "crm.order_line_id_seq", "differs", "max")),
    M("sequence-grant-usage-to-public", "GRANT USAGE ON SEQUENCE crm.order_line_id_seq TO PUBLIC",
      E("sequence", "crm.order_line_id_seq", "differs", "acl")),
    M("sequence-revoke-usage-from-module-role", "REVOKE USAGE ON SEQUENCE crm.order_line_id_seq FROM crm_rw",
      E("sequence", "crm.order_line_id_seq", "differs", "acl")),
    M("sequence-grant-update-to-role", "GRANT UPDATE ON SEQUENCE planning.weekly_actuals_id_seq TO {role}",
      E("sequence", "planning.weekly_actuals_id_seq", "differs", "acl")),
    M("sequence-set-unlogged", "ALTER SEQUENCE crm.order_line_id_seq SET UNLOGGED",
      E("sequence", "crm.order_line_id_seq", "differs", "persistence"),
      xfail="an UNLOGGED sequence is reset by crash recovery (ids start again: duplicate keys) and is not "
            "on replicas; the sequence query does not read relpersistence"),
    M("sequence-extra-standalone", "CREATE SEQUENCE crm.invoice_no_seq",
      W("sequence", "crm.invoice_no_seq", "extra")),
    M("sequence-extra-owned-by-expected-column", "CREATE SEQUENCE crm.batch_seq OWNED BY crm.customer.batch_id",
      W("sequence", "crm.batch_seq", "extra")),

    # -- triggers ---------------------------------------------------------------------------------------
    M("trigger-disabled", "ALTER TABLE crm.customer DISABLE TRIGGER customer_set_updated_at",
      E("trigger", "crm.customer.customer_set_updated_at", "differs", "enabled")),
    M("trigger-enable-replica", "ALTER TABLE crm.customer ENABLE REPLICA TRIGGER customer_set_updated_at",
      E("trigger", "crm.customer.customer_set_updated_at", "differs", "enabled")),
    M("trigger-enable-always", "ALTER TABLE crm.customer ENABLE ALWAYS TRIGGER customer_set_updated_at",
      E("trigger", "crm.customer.customer_set_updated_at", "differs", "enabled")),
    M("trigger-dropped", "DROP TRIGGER customer_set_updated_at ON crm.customer",
      E("trigger", "crm.customer.customer_set_updated_at", "missing")),
    M("trigger-extra",
      "CREATE TRIGGER order_line_touch BEFORE UPDATE ON crm.order_line FOR EACH ROW "
      "EXECUTE FUNCTION crm.set_updated_at()",
      E("trigger", "crm.order_line.order_line_touch", "extra")),
    M("database-session-replication-role-replica",
      "ALTER DATABASE {db} SET session_replication_role = replica",
      E("setting", "database:session_replication_role", "extra"),
      xfail="with session_replication_role = replica set on the database (or a role), no ordinary trigger "
            "and no foreign key check fires in any session; pg_db_role_setting is not read"),
    M("trigger-definition-changed",
      "CREATE OR REPLACE TRIGGER customer_set_updated_at BEFORE INSERT OR UPDATE ON crm.customer "
      "FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at()",
      E("trigger", "crm.customer.customer_set_updated_at", "differs", "definition")),

    # -- rules ------------------------------------------------------------------------------------------
    M("rule-do-instead-nothing-on-delete",
      "CREATE RULE customer_no_delete AS ON DELETE TO crm.customer DO INSTEAD NOTHING",
      E("rule", "crm.customer.customer_no_delete", "extra"), cli=True),
    M("rule-do-also-on-insert",
      "CREATE RULE order_line_log AS ON INSERT TO crm.order_line DO ALSO NOTIFY order_line",
      E("rule", "crm.order_line.order_line_log", "extra")),

    # -- functions --------------------------------------------------------------------------------------
    M("function-security-definer", "ALTER FUNCTION crm.set_updated_at() SECURITY DEFINER",
      E("function", "crm.set_updated_at()", "differs", "security_definer")),
    M("function-set-search-path", "ALTER FUNCTION crm.set_updated_at() SET search_path = crm, pg_temp",
      E("function", "crm.set_updated_at()", "differs", "config")),
    M("function-strict", "ALTER FUNCTION crm.set_updated_at() STRICT",
      E("function", "crm.set_updated_at()", "differs", "strict")),
    M("function-immutable", "ALTER FUNCTION crm.set_updated_at() IMMUTABLE",
      E("function", "crm.set_updated_at()", "differs", "volatility")),
    M("function-leakproof", "ALTER FUNCTION crm.set_updated_at() LEAKPROOF",
      E("function", "crm.set_updated_at()", "differs", "leakproof")),
    M("function-parallel-safe", "ALTER FUNCTION crm.set_updated_at() PARALLEL SAFE",
      W("function", "crm.set_updated_at()", "differs", "parallel")),
    M("function-cost", "ALTER FUNCTION crm.set_updated_at() COST 1000",
      W("function", "crm.set_updated_at()", "differs", "cost")),
    M("function-body-changed",
      "CREATE OR REPLACE FUNCTION crm.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN RETURN NEW; END $$",
      E("function", "crm.set_updated_at()", "differs", "source")),
    M("function-owner", "ALTER FUNCTION crm.set_updated_at() OWNER TO {role}",
      E("function", "crm.set_updated_at()", "differs", "owner")),
    M("function-grant-execute-to-public", "GRANT EXECUTE ON FUNCTION crm.set_updated_at() TO PUBLIC",
      E("function", "crm.set_updated_at()", "differs", "acl")),
    M("function-grant-execute-to-module-role", "GRANT EXECUTE ON FUNCTION infra.set_updated_at() TO infra_rw",
      E("function", "infra.set_updated_at()", "differs", "acl")),
    M("function-revoke-execute-from-owner", "REVOKE EXECUTE ON FUNCTION crm.set_updated_at() FROM CURRENT_USER",
      E("function", "crm.set_updated_at()", "differs", "acl")),
    M("function-comment-changed", "COMMENT ON FUNCTION crm.set_updated_at() IS 'changed by hand'",
      I("function", "crm.set_updated_at()")),
    M("function-extra",
      "CREATE FUNCTION crm.add_one(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1'",
      W("function", "crm.add_one(integer)", "extra")),
    M("function-extra-overload",
      "CREATE FUNCTION crm.set_updated_at(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1'",
      W("function", "crm.set_updated_at(integer)", "extra")),
    M("function-extra-procedure", "CREATE PROCEDURE crm.noop() LANGUAGE sql AS 'SELECT 1'",
      W("function", "crm.noop()", "extra")),
    M("function-extra-aggregate",
      "CREATE AGGREGATE crm.total(numeric) (SFUNC = numeric_add, STYPE = numeric)",
      W("function", "crm.total(numeric)", "extra")),
    M("function-extra-security-definer",
      "CREATE FUNCTION crm.purge_customer(text) RETURNS void LANGUAGE sql SECURITY DEFINER "
      "AS 'DELETE FROM crm.customer WHERE customer_code = $1'",
      E("function", "crm.purge_customer(text)", "extra"),
      xfail="an extra SECURITY DEFINER function runs with its owner's rights and is EXECUTE-able by PUBLIC "
            "by default (reachable by every role with USAGE on the schema): a privilege escalation, "
            "an error even without --strict"),

    # -- enums ------------------------------------------------------------------------------------------
    M("enum-label-added", "ALTER TYPE infra.approval_status ADD VALUE 'ESCALATED'",
      E("enum", "infra.approval_status", "differs", "labels")),
    M("enum-label-added-before", "ALTER TYPE infra.customer_plan ADD VALUE 'TRIAL' BEFORE 'FREE'",
      E("enum", "infra.customer_plan", "differs", "labels")),
    M("enum-labels-reordered",
      "UPDATE pg_enum SET enumsortorder = 2.5 WHERE enumtypid = 'infra.customer_plan'::regtype "
      "AND enumlabel = 'FREE'",
      E("enum", "infra.customer_plan", "differs", "labels")),
    M("enum-label-renamed", "ALTER TYPE infra.customer_plan RENAME VALUE 'STARTUP' TO 'PRO'",
      E("enum", "infra.customer_plan", "differs", "labels")),
    M("enum-owner", "ALTER TYPE infra.customer_plan OWNER TO {role}",
      E("enum", "infra.customer_plan", "differs", "owner")),
    M("enum-revoke-usage-from-public", "REVOKE USAGE ON TYPE infra.customer_plan FROM PUBLIC",
      E("enum", "infra.customer_plan", "differs", "acl")),
    M("enum-comment-changed", "COMMENT ON TYPE infra.customer_plan IS 'changed by hand'",
      I("enum", "infra.customer_plan")),
    M("enum-extra", "CREATE TYPE crm.channel AS ENUM ('EMAIL', 'SMS')",
      W("enum", "crm.channel", "extra")),

    # -- domains, composite and range types ---------------------------------------------------------------
    M("type-extra-domain", "CREATE DOMAIN crm.email AS text CHECK (VALUE LIKE '%@%')",
      W("type", "crm.email", "extra")),
    M("type-extra-composite", "CREATE TYPE crm.money_pair AS (ht numeric(12,2), ttc numeric(12,2))",
      W("type", "crm.money_pair", "extra")),
    M("type-extra-range", "CREATE TYPE crm.score_range AS RANGE (subtype = float8)",
      W("type", "crm.score_range", "extra"),
      xfail="the range's constructor functions (and its multirange's), made by CREATE TYPE and dropped with "
            "it, are each reported as an extra function: the function query skips extension members only"),

    # -- extended statistics ------------------------------------------------------------------------------
    M("statistics-extra", "CREATE STATISTICS crm.customer_flags ON is_contactable, is_bounced FROM crm.customer",
      W("statistics", "crm.customer.customer_flags", "extra")),

    # -- default privileges -------------------------------------------------------------------------------
    M("default-privileges-select-to-public",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA crm GRANT SELECT ON TABLES TO PUBLIC",
      E("default_privilege", "crm.<migrator>:tables", "differs", "acl"), cli=True),
    M("default-privileges-revoked-from-module-role",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA crm REVOKE SELECT ON TABLES FROM crm_ro",
      E("default_privilege", "crm.<migrator>:tables", "differs", "acl")),
    M("default-privileges-execute-to-public",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA crm GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
      E("default_privilege", "crm.<migrator>:functions", "extra")),
    M("default-privileges-for-other-role",
      "ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA crm GRANT SELECT ON TABLES TO crm_ro",
      W("default_privilege", "crm.{role}:tables", "extra")),
    M("default-privileges-types-to-role",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA infra GRANT USAGE ON TYPES TO infra_rw",
      W("default_privilege", "infra.<migrator>:types", "extra")),
    M("default-privileges-database-wide-to-public",
      "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
      *[E("default_privilege", f"{m}.<migrator>:tables (global)", "extra") for m in MODULES],
      xfail="database-wide default privileges of the migrating role (pg_default_acl.defaclnamespace = 0) "
            "apply to every table it creates in the module schemas later, and are not read"),

    # -- unmodeled objects --------------------------------------------------------------------------------
    M("unmodeled-operator",
      "CREATE OPERATOR crm.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq)",
      W("unmodeled", "crm.===(text,text)", "unmodeled"), cli=True),
    M("unmodeled-collation", "CREATE COLLATION crm.ci (provider = libc, locale = 'C')",
      W("unmodeled", "crm.ci", "unmodeled")),
    M("unmodeled-text-search-configuration", "CREATE TEXT SEARCH CONFIGURATION crm.fr (COPY = french)",
      W("unmodeled", "crm.fr", "unmodeled")),
    M("unmodeled-text-search-dictionary",
      "CREATE TEXT SEARCH DICTIONARY crm.simple_fr (TEMPLATE = simple, STOPWORDS = french)",
      W("unmodeled", "crm.simple_fr", "unmodeled")),
    M("unmodeled-operator-family", "CREATE OPERATOR FAMILY crm.fam USING btree",
      W("unmodeled", "crm.fam", "unmodeled")),
    M("unmodeled-conversion",
      "CREATE CONVERSION crm.latin1_utf8 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8",
      W("unmodeled", "crm.latin1_utf8", "unmodeled")),
    M("unmodeled-shell-type", "CREATE TYPE crm.opaque_thing",
      W("unmodeled", "crm.opaque_thing", "unmodeled")),
    M("extension-extra-functions-only", 'CREATE EXTENSION "uuid-ossp" SCHEMA crm',
      W("extension", "crm.uuid-ossp", "extra")),
    M("extension-extra-with-types-and-operators", "CREATE EXTENSION citext SCHEMA crm",
      W("extension", "crm.citext", "extra"),
      xfail="an extension's own types, operators and operator classes are reported one by one as unmodeled "
            "(only its functions are skipped as extension members): dozens of findings for one extension"),

    # -- no-change controls -------------------------------------------------------------------------------
    M("control-reindex-table", "REINDEX TABLE crm.customer", cli=True),
    M("control-reindex-table-concurrently", "REINDEX TABLE CONCURRENTLY crm.order_line"),
    M("control-reindex-schema", "REINDEX SCHEMA planning"),
    M("control-vacuum-full", ["VACUUM FULL crm.customer", "VACUUM FULL planning.weekly_actuals"]),
    M("control-vacuum-freeze-analyze", "VACUUM (FREEZE, ANALYZE) crm.order_line"),
    M("control-analyze", "ANALYZE"),
    M("control-index-dropped-and-recreated",
      ["DROP INDEX crm.ix_customer_email", "CREATE INDEX ix_customer_email ON crm.customer (email)"]),
    M("control-index-recreated-concurrently",
      ["DROP INDEX CONCURRENTLY crm.order_line_order_date_idx",
       "CREATE INDEX CONCURRENTLY order_line_order_date_idx ON crm.order_line (order_date)"]),
    M("control-check-dropped-and-recreated",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
       "ALTER TABLE crm.product ADD CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 3)"]),
    M("control-check-recreated-not-valid-then-validated",
      ["ALTER TABLE crm.product DROP CONSTRAINT product_premium_tier_check",
       "ALTER TABLE crm.product ADD CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 3) "
       "NOT VALID",
       "ALTER TABLE crm.product VALIDATE CONSTRAINT product_premium_tier_check"]),
    M("control-grants-revoked-and-given-again",
      ["REVOKE ALL ON crm.customer FROM crm_ro, crm_rw",
       "GRANT SELECT, INSERT, UPDATE, DELETE ON crm.customer TO crm_rw",
       "GRANT SELECT ON crm.customer TO crm_ro"]),
    M("control-seed", Step("dbtool seed", _seed), cli=True),
    M("control-seed-then-clear", Step("dbtool seed, then seed --clear", _seed_and_clear)),
    M("control-sequence-advanced", "SELECT setval('crm.order_line_id_seq', 123456)"),
    M("control-sql-files-applied-again", _reapply_module("crm")),
    M("control-public-schema-objects",
      ["CREATE TABLE public.scratch (id int PRIMARY KEY)", "CREATE VIEW public.scratch_v AS SELECT 1 AS x"]),
    M("control-last-column-dropped-and-added-again",
      ["ALTER TABLE crm.customer DROP COLUMN updated_at",
       "ALTER TABLE crm.customer ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()"],
      xfail="the table is the same, columns in the same order, but position is pg_attribute.attnum, which "
            "counts the dropped column: updated_at is reported moved (10 -> 11)"),
    M("control-unlogged-then-logged-again",
      ["ALTER TABLE crm.audit_item SET UNLOGGED", "ALTER TABLE crm.audit_item SET LOGGED"]),
    M("control-options-set-then-reset",
      ["ALTER TABLE crm.customer SET (fillfactor = 70)", "ALTER TABLE crm.customer RESET (fillfactor)"]),
    M("control-cluster-then-without-cluster",
      ["CLUSTER crm.order_line USING order_line_pkey", "ALTER TABLE crm.order_line SET WITHOUT CLUSTER"]),
    M("control-trigger-disabled-and-enabled-again",
      ["ALTER TABLE crm.customer DISABLE TRIGGER customer_set_updated_at",
       "ALTER TABLE crm.customer ENABLE TRIGGER customer_set_updated_at"]),

    # -- against a baseline: attributes of kinds the modules do not have ----------------------------------
    M("view-definition-changed",
      "CREATE OR REPLACE VIEW crm.contactable AS SELECT customer_code FROM crm.customer WHERE is_contactable "
      "AND NOT is_optout",
      E("table", "crm.contactable", "differs", "definition"),
      baseline="CREATE VIEW crm.contactable AS SELECT customer_code FROM crm.customer WHERE is_contactable"),
    M("view-security-barrier",
      "ALTER VIEW crm.contactable SET (security_barrier = true)",
      E("table", "crm.contactable", "differs", "options"),
      baseline="CREATE VIEW crm.contactable AS SELECT customer_code FROM crm.customer WHERE is_contactable"),
    M("view-owner", "ALTER VIEW crm.contactable OWNER TO {role}",
      E("table", "crm.contactable", "differs", "owner"),
      baseline="CREATE VIEW crm.contactable AS SELECT customer_code FROM crm.customer WHERE is_contactable"),
    M("view-grant-to-public", "GRANT SELECT ON crm.contactable TO PUBLIC",
      E("table", "crm.contactable", "differs", "acl"),
      baseline="CREATE VIEW crm.contactable AS SELECT customer_code FROM crm.customer WHERE is_contactable"),
    M("materialized-view-definition-changed",
      ["DROP MATERIALIZED VIEW crm.families",
       "CREATE MATERIALIZED VIEW crm.families AS SELECT DISTINCT family_crm FROM crm.product WHERE is_active"],
      E("table", "crm.families", "differs", "definition"),
      baseline="CREATE MATERIALIZED VIEW crm.families AS SELECT DISTINCT family_crm FROM crm.product"),
    M("partition-bound-changed",
      ["ALTER TABLE crm.event_log DETACH PARTITION crm.event_log_2024",
       "ALTER TABLE crm.event_log ATTACH PARTITION crm.event_log_2024 FOR VALUES FROM ('2024-01-01') "
       "TO ('2024-07-01')"],
      E("table", "crm.event_log_2024", "differs", "partition_bound"),
      baseline=["CREATE TABLE crm.event_log (id bigint, at date NOT NULL) PARTITION BY RANGE (at)",
                "CREATE TABLE crm.event_log_2024 PARTITION OF crm.event_log "
                "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"]),
    M("partition-detached", "ALTER TABLE crm.event_log DETACH PARTITION crm.event_log_2024",
      E("table", "crm.event_log_2024", "differs", "inherits"),
      E("table", "crm.event_log_2024", "differs", "partition_bound"),
      baseline=["CREATE TABLE crm.event_log (id bigint, at date NOT NULL) PARTITION BY RANGE (at)",
                "CREATE TABLE crm.event_log_2024 PARTITION OF crm.event_log "
                "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"]),
    M("partition-key-changed",
      ["DROP TABLE crm.event_log", "CREATE TABLE crm.event_log (id bigint, at date NOT NULL) PARTITION BY LIST (at)"],
      E("table", "crm.event_log", "differs", "partition_key"),
      baseline="CREATE TABLE crm.event_log (id bigint, at date NOT NULL) PARTITION BY RANGE (at)"),
    M("policy-using-changed", "ALTER POLICY contactable ON crm.customer USING (is_contactable AND NOT is_optout)",
      E("policy", "crm.customer.contactable", "differs", "using"),
      baseline="CREATE POLICY contactable ON crm.customer FOR SELECT TO crm_ro USING (is_contactable)"),
    M("policy-roles-changed", "ALTER POLICY contactable ON crm.customer TO crm_ro, crm_rw",
      E("policy", "crm.customer.contactable", "differs", "roles"),
      baseline="CREATE POLICY contactable ON crm.customer FOR SELECT TO crm_ro USING (is_contactable)"),
    M("policy-with-check-changed", "ALTER POLICY own ON crm.customer WITH CHECK (is_contactable)",
      E("policy", "crm.customer.own", "differs", "with_check"),
      baseline="CREATE POLICY own ON crm.customer FOR UPDATE TO crm_rw USING (true) WITH CHECK (true)"),
    M("policy-command-and-permissive-changed",
      ["DROP POLICY contactable ON crm.customer",
       "CREATE POLICY contactable ON crm.customer AS RESTRICTIVE FOR ALL TO crm_ro USING (is_contactable)"],
      E("policy", "crm.customer.contactable", "differs", "command"),
      E("policy", "crm.customer.contactable", "differs", "permissive"),
      baseline="CREATE POLICY contactable ON crm.customer FOR SELECT TO crm_ro USING (is_contactable)"),
    M("policy-dropped", "DROP POLICY contactable ON crm.customer",
      E("policy", "crm.customer.contactable", "missing"),
      baseline="CREATE POLICY contactable ON crm.customer FOR SELECT TO crm_ro USING (is_contactable)"),
    M("rule-disabled", "ALTER TABLE crm.customer DISABLE RULE customer_no_delete",
      E("rule", "crm.customer.customer_no_delete", "differs", "enabled"),
      baseline="CREATE RULE customer_no_delete AS ON DELETE TO crm.customer DO INSTEAD NOTHING"),
    M("rule-definition-changed",
      "CREATE OR REPLACE RULE customer_no_delete AS ON DELETE TO crm.customer WHERE old.is_optout DO INSTEAD NOTHING",
      E("rule", "crm.customer.customer_no_delete", "differs", "definition"),
      baseline="CREATE RULE customer_no_delete AS ON DELETE TO crm.customer DO INSTEAD NOTHING"),
    M("domain-constraint-changed",
      ["ALTER DOMAIN crm.email DROP CONSTRAINT email_check",
       "ALTER DOMAIN crm.email ADD CONSTRAINT email_check CHECK (VALUE LIKE '%_@_%')"],
      E("type", "crm.email", "differs", "definition"),
      baseline="CREATE DOMAIN crm.email AS text CONSTRAINT email_check CHECK (VALUE LIKE '%@%')"),
    M("domain-not-null-added", "ALTER DOMAIN crm.email SET NOT NULL",
      E("type", "crm.email", "differs", "definition"),
      baseline="CREATE DOMAIN crm.email AS text CONSTRAINT email_check CHECK (VALUE LIKE '%@%')"),
    M("composite-attribute-added", "ALTER TYPE crm.money_pair ADD ATTRIBUTE vat numeric(12,2)",
      E("type", "crm.money_pair", "differs", "definition"),
      baseline="CREATE TYPE crm.money_pair AS (ht numeric(12,2), ttc numeric(12,2))"),
    M("statistics-target-changed", "ALTER STATISTICS crm.customer_flags SET STATISTICS 500",
      W("statistics", "crm.customer.customer_flags", "differs", "target"),
      baseline="CREATE STATISTICS crm.customer_flags ON is_contactable, is_bounced FROM crm.customer"),
    M("statistics-definition-changed",
      ["DROP STATISTICS crm.customer_flags",
       "CREATE STATISTICS crm.customer_flags (mcv) ON is_contactable, is_bounced FROM crm.customer"],
      E("statistics", "crm.customer.customer_flags", "differs", "definition"),
      baseline="CREATE STATISTICS crm.customer_flags ON is_contactable, is_bounced FROM crm.customer"),
    M("generated-expression-dropped", "ALTER TABLE crm.order_line ALTER COLUMN amount_vat DROP EXPRESSION",
      E("column", "crm.order_line.amount_vat", "differs", "generated"),
      baseline="ALTER TABLE crm.order_line ADD COLUMN amount_vat numeric "
               "GENERATED ALWAYS AS (amount_ttc - amount_ht) STORED"),
    M("extension-version-changed", "ALTER EXTENSION pgstattuple UPDATE",
      E("extension", "crm.pgstattuple", "differs", "version"),
      baseline="CREATE EXTENSION pgstattuple SCHEMA crm VERSION '1.4'"),
    M("fk-on-delete-set-null-columns-changed",
      ["ALTER TABLE crm.child DROP CONSTRAINT child_parent_fkey",
       "ALTER TABLE crm.child ADD CONSTRAINT child_parent_fkey FOREIGN KEY (a, b) REFERENCES crm.parent "
       "ON DELETE SET NULL (b)"],
      E("constraint", "crm.child.child_parent_fkey", "differs", "on_delete"),
      baseline=["CREATE TABLE crm.parent (a int, b int, PRIMARY KEY (a, b))",
                "CREATE TABLE crm.child (a int, b int, CONSTRAINT child_parent_fkey FOREIGN KEY (a, b) "
                "REFERENCES crm.parent ON DELETE SET NULL)"],
      xfail="ON DELETE SET NULL (b) keeps a (PostgreSQL 15's column list, pg_constraint.confdelsetcols): "
            "a foreign key's definition is not compared (its parts are) and no part holds the list"),
    M("control-table-rebuilt-without-dropped-column",
      ["DROP TABLE crm.notes", "CREATE TABLE crm.notes (id int, body text)"],
      baseline=["CREATE TABLE crm.notes (id int, scratch int, body text)",
                "ALTER TABLE crm.notes DROP COLUMN scratch"],
      xfail="position is pg_attribute.attnum, which counts dropped columns: the same table rebuilt "
            "(pg_dump/restore, or a fresh migrate after a DROP COLUMN in sql/) reports its later columns moved"),
]


def _params():
    for m in MUTATIONS:
        marks: list = []  # every row once marked xfail is fixed; `xfail=` keeps the story of what was wrong
        yield pytest.param(m, id=m.id, marks=marks)


def test_the_table_is_wide():
    assert len(MUTATIONS) >= 120
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS), "row ids are unique"


@pytest.fixture
def role(db_url):
    """A role of this test only (roles are cluster-global): dropped, with what it owns here, afterwards."""
    name = f"mut_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} NOLOGIN")
    yield name
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def _apply(url: str, steps, names: dict) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for step in steps:
            if isinstance(step, Step):
                step.run(url)
            elif isinstance(step, Fails):
                with pytest.raises(psycopg.Error):
                    conn.execute(step.sql.format(**names))
            else:
                conn.execute(step.format(**names))


def _names(request, m: Mutation, url: str) -> dict:
    """Placeholders of the row's statements: {role} (a role made for the test), {db} (its database)."""
    texts = [s for s in (*m.sql, *m.baseline) if isinstance(s, str)] + [f[2] for f in m.findings]
    names = {"db": conninfo_to_dict(url)["dbname"]}
    if any("{role}" in t for t in texts):
        names["role"] = request.getfixturevalue("role")
    return names


def _skip_unless_extensions_available(url: str, m: Mutation) -> None:
    """Rows that CREATE EXTENSION need the server's contrib files (Debian: in the postgresql package)."""
    wanted = {s.split()[2].strip('"') for s in (*m.baseline, *m.sql)
              if isinstance(s, str) and s.upper().startswith("CREATE EXTENSION")}
    if wanted:
        with psycopg.connect(url) as conn:
            have = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions WHERE name = ANY(%s)",
                                               [list(wanted)])}
        if wanted - have:
            pytest.skip(f"the server has no {', '.join(sorted(wanted - have))} extension")


def _expected(m: Mutation, names: dict, strict: bool) -> list[Finding]:
    out = []
    for severity, kind, obj, problem, attribute in m.findings:
        if strict and severity == WARNING and problem in PROMOTED_BY_STRICT:
            severity = ERROR
        out.append((severity, kind, obj.format(**names), problem, attribute))
    return sorted(out, key=str)


def _got(findings) -> list[Finding]:
    return sorted(((f.severity, f.kind, f.object, f.problem, f.attribute) for f in findings), key=str)


def _live_catalog(url: str):
    with psycopg.connect(url) as conn:
        return read_catalog(conn, MODULES)


@pytest.mark.parametrize("m", list(_params()))
def test_mutation_gives_exactly_its_findings(m: Mutation, db_url, request):
    """What `validate` does (the committed snapshot, or the baseline, against the live catalog), read once."""
    _skip_unless_extensions_available(db_url, m)
    names = _names(request, m, db_url)
    expected = expected_catalog(MODULES)
    if m.baseline:
        _apply(db_url, m.baseline, names)
        expected = _live_catalog(db_url)
    _apply(db_url, m.sql, names)
    live = _live_catalog(db_url)
    for strict in (False, True):
        assert _got(diff(expected, live, strict=strict)) == _expected(m, names, strict), f"strict={strict}"


def test_library_validate_is_the_diff_of_the_snapshot_and_the_live_catalog(db_url):
    """The rows above diff the catalogs themselves; `validate` gives the same findings, and counts errors."""
    _apply(db_url, ["ALTER TABLE crm.customer ALTER COLUMN email TYPE text", "CREATE TABLE crm.scratch (id int)",
                    "COMMENT ON TABLE crm.product IS 'x'"], {})
    live = _live_catalog(db_url)
    for strict in (False, True):
        report = validate(Target(db_url, "test"), MODULES, strict=strict)
        assert _got(report.findings) == _got(diff(expected_catalog(MODULES), live, strict=strict))
        assert (report.errors, report.count(WARNING), report.count(INFO)) == ((2, 0, 1) if strict else (1, 1, 1))


CLI_ROWS = [m for m in MUTATIONS if m.cli]


@pytest.mark.parametrize("m", [pytest.param(m, id=m.id) for m in CLI_ROWS])
def test_cli_exit_codes(m: Mutation, db_url, request):
    """The real CLI: exit 0 when clean or only warnings/info, 1 on any error; --strict makes extras errors."""
    assert not m.xfail and not m.baseline
    names = _names(request, m, db_url)
    _apply(db_url, m.sql, names)
    for strict in (False, True):
        want = _expected(m, names, strict)
        out = run_dbtool("validate", "--database-url", db_url, "--format", "json", *(["--strict"] if strict else []))
        assert "Traceback" not in out.stderr, out.stderr
        report = json.loads(out.stdout)
        got = sorted(((f["severity"], f["kind"], f["object"], f["problem"], f["attribute"])
                      for f in report["findings"]), key=str)
        assert got == want, f"strict={strict}"
        assert out.returncode == (1 if any(f[0] == ERROR for f in want) else 0), f"strict={strict}"
        assert report["ok"] is (out.returncode == 0) and report["strict"] is strict


def test_cli_rows_cover_every_exit_code_pattern():
    """Clean, info only, warning only (0 then 1 under --strict), error (1 and 1)."""
    patterns = set()
    for m in CLI_ROWS:
        severities = {f[0] for f in m.findings}
        promoted = any(f[0] == WARNING and f[3] in PROMOTED_BY_STRICT for f in m.findings)
        patterns.add((ERROR in severities, promoted, severities <= {INFO}))
    assert {(False, False, True), (False, True, False), (True, False, False)} <= patterns
