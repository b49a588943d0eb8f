-- Demo rows of the planning module (spec 003: stores, categories, a workflow and its weekly actuals,
-- plus a cluster and some sales history). Idempotent: natural keys with ON CONFLICT DO NOTHING; weekly
-- actuals keyed by (workflow_id, week_number, store_id). Removed exactly by planning.clear.sql.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/planning.sql "$DATABASE_URL"

INSERT INTO planning.store_clusters (cluster_id, cluster_name, description) VALUES
    ('SEED_CL_URBAN', 'Urban large', 'Large urban stores, high income (seed)')
ON CONFLICT DO NOTHING;

INSERT INTO planning.stores (store_id, store_name, cluster_id, store_size_sqft, location_tier, median_income,
                             store_format, region, avg_weekly_sales_12mo) VALUES
    ('S001', 'Downtown Flagship', 'SEED_CL_URBAN', 42000, 'A', 98000, 'flagship', 'Northeast', 185000.0),
    ('S002', 'Riverside Mall', 'SEED_CL_URBAN', 28000, 'B', 72000, 'mall', 'Northeast', 121000.0)
ON CONFLICT DO NOTHING;

INSERT INTO planning.categories (category_id, category_name, department) VALUES
    ('womens_dresses', 'Women''s Dresses', 'Womenswear'),
    ('mens_shirts', 'Men''s Shirts', 'Menswear')
ON CONFLICT DO NOTHING;

INSERT INTO planning.workflows (workflow_id, name, status, season, start_date, end_date, forecast_parameters) VALUES
    ('seed_workflow', 'Spring 2025 demo plan', 'running', 'SS25', '2025-03-03', '2025-05-25',
     '{"horizon_weeks": 12, "model": "prophet", "seed": true}')
ON CONFLICT DO NOTHING;

INSERT INTO planning.historical_sales (sale_id, week_start_date, category_id, store_id, units_sold) VALUES
    ('SEED-HS-2024-03-04-S001-WD', '2024-03-04', 'womens_dresses', 'S001', 132),
    ('SEED-HS-2024-03-04-S002-WD', '2024-03-04', 'womens_dresses', 'S002', 87),
    ('SEED-HS-2024-03-04-S001-MS', '2024-03-04', 'mens_shirts', 'S001', 64)
ON CONFLICT DO NOTHING;

-- variance_pct = (actual - forecast) / forecast, NULL without a forecast (as the upload computes it).
INSERT INTO planning.weekly_actuals (workflow_id, week_number, week_start_date, week_end_date, store_id,
                                     category_id, actual_units_sold, forecast_units_sold, variance_pct)
SELECT v.workflow_id, v.week, v.ws::date, v.we::date, v.store, v.category, v.actual, v.forecast,
       (v.actual - v.forecast)::double precision / NULLIF(v.forecast, 0)
FROM (VALUES
    ('seed_workflow', 1, '2025-03-03', '2025-03-09', 'S001', 'womens_dresses', 150, 140),
    ('seed_workflow', 1, '2025-03-03', '2025-03-09', 'S002', 'womens_dresses', 90, 100),
    ('seed_workflow', 2, '2025-03-10', '2025-03-16', 'S001', 'womens_dresses', 160, NULL)
) AS v (workflow_id, week, ws, we, store, category, actual, forecast)
ON CONFLICT DO NOTHING;
