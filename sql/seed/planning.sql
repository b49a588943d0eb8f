-- Demo rows of the planning module (spec 003: stores, categories, a workflow and its weekly actuals,
-- plus a cluster and some sales history). Idempotent: a row whose key is taken is left as it is. Each
-- row the seed inserts is recorded in dbtool.seeded_row (_seed_functions.sql), in the same transaction,
-- so that planning.clear.sql removes only those rows, and only while they still hold these values.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/planning.sql "$DATABASE_URL"

\ir _seed_functions.sql

DO $seed$ BEGIN
PERFORM pg_temp.dbtool_seed('planning.store_clusters', to_jsonb(v)) FROM (VALUES
    ('SEED_CL_URBAN', 'Urban large', 'Large urban stores, high income (seed)')
) AS v (cluster_id, cluster_name, description);

PERFORM pg_temp.dbtool_seed('planning.stores', to_jsonb(v)) FROM (VALUES
    ('S001', 'Downtown Flagship', 'SEED_CL_URBAN', 42000, 'A', 98000, 'flagship', 'Northeast', 185000.0),
    ('S002', 'Riverside Mall', 'SEED_CL_URBAN', 28000, 'B', 72000, 'mall', 'Northeast', 121000.0)
) AS v (store_id, store_name, cluster_id, store_size_sqft, location_tier, median_income, store_format, region,
        avg_weekly_sales_12mo);

PERFORM pg_temp.dbtool_seed('planning.categories', to_jsonb(v)) FROM (VALUES
    ('womens_dresses', 'Women''s Dresses', 'Womenswear'),
    ('mens_shirts', 'Men''s Shirts', 'Menswear')
) AS v (category_id, category_name, department);

PERFORM pg_temp.dbtool_seed('planning.workflows', to_jsonb(v)) FROM (VALUES
    ('seed_workflow', 'Spring 2025 demo plan', 'running', 'SS25', '2025-03-03', '2025-05-25',
     '{"horizon_weeks": 12, "model": "prophet", "seed": true}'::jsonb)
) AS v (workflow_id, name, status, season, start_date, end_date, forecast_parameters);

PERFORM pg_temp.dbtool_seed('planning.historical_sales', to_jsonb(v)) FROM (VALUES
    ('SEED-HS-2024-03-04-S001-WD', '2024-03-04', 'womens_dresses', 'S001', 132),
    ('SEED-HS-2024-03-04-S002-WD', '2024-03-04', 'womens_dresses', 'S002', 87),
    ('SEED-HS-2024-03-04-S001-MS', '2024-03-04', 'mens_shirts', 'S001', 64)
) AS v (sale_id, week_start_date, category_id, store_id, units_sold);

-- variance_pct = (actual - forecast) / forecast, NULL without a forecast (as the upload computes it).
PERFORM pg_temp.dbtool_seed('planning.weekly_actuals', to_jsonb(x)) FROM (
    SELECT v.workflow_id, v.week_number, v.week_start_date, v.week_end_date, v.store_id, v.category_id,
           v.actual_units_sold, v.forecast_units_sold,
           (v.actual_units_sold - v.forecast_units_sold)::double precision / NULLIF(v.forecast_units_sold, 0)
               AS variance_pct
    FROM (VALUES
        ('seed_workflow', 1, '2025-03-03', '2025-03-09', 'S001', 'womens_dresses', 150, 140),
        ('seed_workflow', 1, '2025-03-03', '2025-03-09', 'S002', 'womens_dresses', 90, 100),
        ('seed_workflow', 2, '2025-03-10', '2025-03-16', 'S001', 'womens_dresses', 160, NULL)
    ) AS v (workflow_id, week_number, week_start_date, week_end_date, store_id, category_id, actual_units_sold,
            forecast_units_sold)
) AS x;
END $seed$;
