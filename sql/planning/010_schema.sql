-- Spec: 003_5348cd3a2617ad4c.txt (retail planning, Phase 4.5 data upload).
-- The schema that holds stores, clusters, categories, workflows, sales history and weekly actuals.

CREATE SCHEMA IF NOT EXISTS planning;

COMMENT ON SCHEMA planning IS
    'Retail planning: stores and their clusters, product categories, historical sales used for '
    'training, planning workflows and the weekly actuals uploaded for variance monitoring.';
