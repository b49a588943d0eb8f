"""planning: the initial schema (sql/planning/010 to 090).

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
        "040_store_clusters.sql",
        "050_stores.sql",
        "060_categories.sql",
        "070_workflows.sql",
        "080_historical_sales.sql",
        "090_weekly_actuals.sql",
    ),
    rollback_sql(__file__, "DROP SCHEMA IF EXISTS planning CASCADE"),
)
