"""planning: weekly_actuals (sql/planning/090_weekly_actuals.sql), after checking the tables it builds on.

Seed 003's migration: the existing tables historical_sales, stores, categories and workflows are validated,
never created here; weekly_actuals is the one table it creates. First a catalog check, which changes nothing:
each of the four tables is there, as a table, with the seed's columns (type, NOT NULL) and primary key. When
one is missing or wrong the migration stops with one line naming every problem (nothing applied), e.g.
`planning.stores has no column region (character varying(50) NOT NULL)`.

Then the file, idempotent (CREATE ... IF NOT EXISTS). Its number (090) is below 100_privileges.sql, which
planning_0002_privileges applies, because until issue 13 planning_0001_initial applied it: databases
migrated then already have the table, and its applied-file checksum, which must keep matching the file.
There the file is a no-op, recorded as this migration's; this migration's record replaces
planning_0001_initial's, so history and checksums match a database migrated since. psql applies the files
in number order, so weekly_actuals exists before the privileges file runs; a migrated database creates it
after, and the default privileges of 100_privileges.sql give it the same grants (tests/test_planning_history.py).

Rollback drops weekly_actuals and its rows (dbtool asks first), and nothing else: the seed's rollback. An
object outside planning that depends on it is named, and dropped only with `dbtool rollback --cascade`.
"""

from pathlib import Path

from yoyo import step

from dbtool.errors import MigrationError
from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"planning_0002_privileges"}

MIGRATION = Path(__file__).stem

# Seed 003, "Existing Tables (Validate Only)": historical_sales and stores as the seed writes them (FLOAT is
# double precision); categories and workflows by the key weekly_actuals' foreign keys reference.
# One row per problem, in the seed's order; none when all is well. Reads the catalog only (no table lock).
CHECK_SQL = """
WITH need(tab_ord, tab, col_ord, col, typ, not_null, is_key) AS (VALUES
    (1, 'historical_sales', 1, 'sale_id', 'character varying(100)', true, true),
    (1, 'historical_sales', 2, 'week_start_date', 'date', true, false),
    (1, 'historical_sales', 3, 'category_id', 'character varying(50)', true, false),
    (1, 'historical_sales', 4, 'store_id', 'character varying(50)', true, false),
    (1, 'historical_sales', 5, 'units_sold', 'integer', true, false),
    (2, 'stores', 1, 'store_id', 'character varying(50)', true, true),
    (2, 'stores', 2, 'store_name', 'character varying(100)', true, false),
    (2, 'stores', 3, 'cluster_id', 'character varying(50)', false, false),
    (2, 'stores', 4, 'store_size_sqft', 'integer', true, false),
    (2, 'stores', 5, 'location_tier', 'character varying(20)', true, false),
    (2, 'stores', 6, 'median_income', 'integer', true, false),
    (2, 'stores', 7, 'store_format', 'character varying(50)', true, false),
    (2, 'stores', 8, 'region', 'character varying(50)', true, false),
    (2, 'stores', 9, 'avg_weekly_sales_12mo', 'double precision', true, false),
    (3, 'categories', 1, 'category_id', 'character varying(50)', true, true),
    (4, 'workflows', 1, 'workflow_id', 'character varying(50)', true, true)
),
rel AS (
    SELECT t.tab_ord, t.tab, format('planning.%I', t.tab) AS name, c.oid, c.relkind IN ('r', 'p') AS is_table
    FROM (SELECT DISTINCT tab_ord, tab FROM need) t
    LEFT JOIN pg_catalog.pg_class c ON c.oid = to_regclass(format('planning.%I', t.tab))
),
pkey AS (
    SELECT r.tab, (SELECT array_agg(a.attname::text ORDER BY k.i)
                   FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS cols
    FROM rel r JOIN pg_catalog.pg_constraint con ON con.conrelid = r.oid AND con.contype = 'p'
),
problem(tab_ord, col_ord, what) AS (
    SELECT tab_ord, 0, name || CASE WHEN oid IS NULL THEN ' is missing' ELSE ' is not a table' END
    FROM rel WHERE oid IS NULL OR NOT is_table
  UNION ALL
    SELECT r.tab_ord, n.col_ord, CASE
        WHEN a.attnum IS NULL THEN format('%s has no column %I (%s%s)', r.name, n.col, n.typ,
                                          CASE WHEN n.not_null THEN ' NOT NULL' ELSE '' END)
        WHEN format_type(a.atttypid, a.atttypmod) <> n.typ THEN format('%s.%I is %s, not %s', r.name, n.col,
                                                                       format_type(a.atttypid, a.atttypmod), n.typ)
        WHEN n.not_null AND NOT a.attnotnull THEN format('%s.%I allows NULL, not NOT NULL', r.name, n.col)
    END
    FROM need n JOIN rel r ON r.tab = n.tab AND r.is_table
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attname = n.col AND a.attnum > 0
                                       AND NOT a.attisdropped
  UNION ALL
    SELECT r.tab_ord, 100, CASE WHEN p.cols IS NULL THEN format('%s has no primary key (%s)', r.name, k.cols)
                                ELSE format('%s has primary key (%s), not (%s)', r.name,
                                            array_to_string(p.cols, ', '), k.cols) END
    FROM rel r
    JOIN (SELECT tab, string_agg(col, ', ' ORDER BY col_ord) AS cols FROM need WHERE is_key GROUP BY tab) k
      ON k.tab = r.tab
    LEFT JOIN pkey p ON p.tab = r.tab
    WHERE r.is_table AND (p.cols IS NULL OR array_to_string(p.cols, ', ') <> k.cols)
)
SELECT what FROM problem WHERE what IS NOT NULL ORDER BY tab_ord, col_ord
"""


def check_existing_tables(conn) -> None:
    """Seed 003's prerequisite check: refuse, in one line naming every problem, unless the existing tables are
    there as the seed describes them."""
    with conn.cursor() as cur:
        problems = [row[0] for row in cur.execute(CHECK_SQL).fetchall()]
    if problems:
        raise MigrationError(
            f"migration {MIGRATION} cannot create planning.weekly_actuals: {'; '.join(problems)} (seed 003's "
            "existing tables, which it checks but never creates: restore them as sql/planning/040 to 080 define "
            "them, then migrate again); nothing was applied")


# planning_0001_initial applied 090_weekly_actuals.sql until issue 13: this migration's record of it replaces
# that one (same file, unchanged), so the records match a database migrated since.
TAKE_OVER = """
DELETE FROM dbtool.applied_file
WHERE migration_id = 'planning_0001_initial' AND file = 'planning/090_weekly_actuals.sql'
"""

step(check_existing_tables)
step(
    apply_files(__file__, "090_weekly_actuals.sql"),
    rollback_sql(__file__, "DROP TABLE IF EXISTS planning.weekly_actuals CASCADE"),
)
step(TAKE_OVER)
