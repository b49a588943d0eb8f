-- Remove the rows sql/seed/crm.sql inserted, and only those: rows recorded in dbtool.seeded_row
-- that still hold every value the seed gave them and that no row of any table references, children
-- first. Anything else is kept, and the result says per table what was removed and kept, and why.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/crm.clear.sql "$DATABASE_URL"

\ir _seed_functions.sql

SELECT * FROM pg_temp.dbtool_clear_seed('crm');
