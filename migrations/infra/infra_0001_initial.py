"""infra: the initial schema (sql/infra/010 to 090).

Rollback drops the schema this migration created, with everything in it.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__: set[str] = set()

step(
    apply_files(
        __file__,
        "010_schema.sql",
        "020_types.sql",
        "030_functions.sql",
        "040_customers.sql",
        "050_agents.sql",
        "060_recommendations.sql",
        "070_approvals.sql",
        "080_optimizations.sql",
        "090_events.sql",
    ),
    rollback_sql(__file__, "DROP SCHEMA IF EXISTS infra CASCADE"),
)
