"""crm: the initial schema (sql/crm/010 to 130).

Rollback drops the schema this migration created, with everything in it.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__: set[str] = set()

step(
    apply_files(
        __file__,
        "010_schema.sql",
        "030_functions.sql",
        "040_product.sql",
        "050_product_alias.sql",
        "060_customer.sql",
        "070_order_line.sql",
        "080_reco_run.sql",
        "090_contact_event.sql",
        "100_client_master_profile.sql",
        "110_reco_item.sql",
        "120_audit_item.sql",
        "130_outcome_event.sql",
    ),
    rollback_sql(__file__, "DROP SCHEMA IF EXISTS crm CASCADE"),
)
