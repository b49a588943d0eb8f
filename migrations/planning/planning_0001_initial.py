"""planning: the tables seed 003 treats as existing (sql/planning/010 to 080).

The schema, its trigger function, and the tables the retail systems own: store_clusters, stores,
categories, workflows (Phase 4) and historical_sales (Phase 1). Seed 003 only validates these;
planning_0003_weekly_actuals checks them and creates weekly_actuals, the one table it adds.

Until issue 13 this migration also applied sql/planning/090_weekly_actuals.sql. On a database migrated
then, planning_0003_weekly_actuals finds the table there, applies the same file (a no-op), records it
as its own and takes over this migration's record of it: history and checksums end up as on a database
migrated since, and no manual step is needed.

Rollback drops the schema, but only while its tables are empty: they hold the retail systems' stores,
categories, workflows and sales history, which a rollback must not take with it. Otherwise it refuses,
naming the tables that hold rows, and changes nothing. Demo rows go with `dbtool seed --clear --module
planning`; to drop the schema with its data on purpose, run `dbtool reset --module planning` (it asks).
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__: set[str] = set()

ROLLBACK = """
DO $$
DECLARE
    rel text;
    has_rows boolean;
    held text[] := '{}';
BEGIN
    FOR rel IN SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'planning' AND c.relkind IN ('r', 'p') ORDER BY c.relname LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s)', rel) INTO has_rows;
        IF has_rows THEN
            held := held || rel;
        END IF;
    END LOOP;
    IF cardinality(held) > 0 THEN
        RAISE EXCEPTION '% hold% rows: the retail systems'' data, which rolling back planning_0001_initial does '
                        'not drop (remove demo rows with dbtool seed --clear --module planning; drop the schema '
                        'with its data with dbtool reset --module planning)',
                        array_to_string(held, ', '), CASE WHEN cardinality(held) = 1 THEN 's' ELSE '' END;
    END IF;
END
$$;
DROP SCHEMA IF EXISTS planning CASCADE;
"""

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
    ),
    rollback_sql(__file__, ROLLBACK),
)
