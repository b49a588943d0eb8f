-- Remove exactly the rows of sql/seed/planning.sql, children first; a seed parent that non-seed rows
-- still reference is kept (deleting it would cascade to, or block on, rows that are not ours).
DELETE FROM planning.weekly_actuals WHERE workflow_id = 'seed_workflow'
    AND (week_number, store_id, category_id) IN ((1, 'S001', 'womens_dresses'), (1, 'S002', 'womens_dresses'),
                                                 (2, 'S001', 'womens_dresses'));
DELETE FROM planning.historical_sales WHERE sale_id IN ('SEED-HS-2024-03-04-S001-WD', 'SEED-HS-2024-03-04-S002-WD',
    'SEED-HS-2024-03-04-S001-MS');
DELETE FROM planning.workflows w WHERE workflow_id = 'seed_workflow'
    AND NOT EXISTS (SELECT 1 FROM planning.weekly_actuals x WHERE x.workflow_id = w.workflow_id);
DELETE FROM planning.categories c WHERE category_id IN ('womens_dresses', 'mens_shirts')
    AND NOT EXISTS (SELECT 1 FROM planning.weekly_actuals x WHERE x.category_id = c.category_id)
    AND NOT EXISTS (SELECT 1 FROM planning.historical_sales x WHERE x.category_id = c.category_id)
    AND NOT EXISTS (SELECT 1 FROM planning.categories x WHERE x.parent_category_id = c.category_id);
DELETE FROM planning.stores s WHERE store_id IN ('S001', 'S002')
    AND NOT EXISTS (SELECT 1 FROM planning.weekly_actuals x WHERE x.store_id = s.store_id)
    AND NOT EXISTS (SELECT 1 FROM planning.historical_sales x WHERE x.store_id = s.store_id);
DELETE FROM planning.store_clusters c WHERE cluster_id = 'SEED_CL_URBAN'
    AND NOT EXISTS (SELECT 1 FROM planning.stores x WHERE x.cluster_id = c.cluster_id);
