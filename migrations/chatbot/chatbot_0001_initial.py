"""chatbot: the initial schema (sql/chatbot/010 to 100).

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
        "040_users.sql",
        "050_sessions.sql",
        "060_messages.sql",
        "070_qualified_leads.sql",
        "080_car_interactions.sql",
        "090_human_handoffs.sql",
        "100_metrics_daily.sql",
    ),
    rollback_sql(__file__, "DROP SCHEMA IF EXISTS chatbot CASCADE"),
)
