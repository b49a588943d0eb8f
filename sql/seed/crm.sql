-- Demo rows of the crm module (spec 000/001 fixtures: product PINOT_NOIR_2022, customer CUST_001),
-- with enough around them to exercise every crm table. Idempotent: a row whose natural key is taken is
-- left as it is; rows of identity-keyed tables are "there" when a row with their SEED- doc_ref /
-- campaign / flag exists (identity ids are never given, so no setval is needed). Each row the seed
-- inserts is recorded in dbtool.seeded_row (_seed_functions.sql), in the same transaction, so that
-- crm.clear.sql removes only those rows, and only while they still hold these values.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/crm.sql "$DATABASE_URL"

\ir _seed_functions.sql

DO $seed$ BEGIN
PERFORM pg_temp.dbtool_seed('crm.product', to_jsonb(v)) FROM (VALUES
    ('PINOT_NOIR_2022', 'Pinot Noir 2022', 'Red', 'Pinot Noir', 'Dry', '15-25', 1, 4, 3, 2, 3, 4, 2, 2,
     '["autumn", "christmas"]'::jsonb, 0.82),
    ('CHABLIS_2021', 'Chablis 2021', 'White', 'Chardonnay', 'Dry', '15-25', 1, 3, 3, 1, 5, 4, 2, 1,
     '["summer"]', 0.74),
    ('MARGAUX_2018', 'Margaux 2018', 'Red', 'Cabernet Sauvignon', 'Dry', '50+', 3, 4, 2, 3, 2, 3, 5, 5,
     '["christmas"]', 0.66)
) AS v (product_key, product_label, family_crm, cepage, sucrosite_niveau, price_band, premium_tier, aroma_fruit,
        aroma_floral, aroma_spice, aroma_mineral, aroma_acidity, aroma_body, aroma_tannin, season_tags,
        global_popularity_score);

PERFORM pg_temp.dbtool_seed('crm.product_alias', to_jsonb(v)) FROM (VALUES
    ('pinot noir 2022', 'PINOT_NOIR_2022', 'PINOT NOIR 2022 75CL', 'MANUAL')
) AS v (alias_label, product_key, raw_label, source);

PERFORM pg_temp.dbtool_seed('crm.customer', to_jsonb(v)) FROM (VALUES
    ('CUST_001', 'cust001@example.com', 'Claire', 'Martin', 'SEED')
) AS v (customer_code, email, first_name, last_name, batch_id);

PERFORM pg_temp.dbtool_seed('crm.order_line', to_jsonb(v), ARRAY['doc_ref']) FROM (VALUES
    ('CUST_001', 'PINOT_NOIR_2022', '2024-11-15', 'SEED-INV-0001', 6, 120.00, 144.00),
    ('CUST_001', 'CHABLIS_2021', '2025-03-02', 'SEED-INV-0002', 3, 66.00, 79.20)
) AS v (customer_code, product_key, order_date, doc_ref, quantity, amount_ht, amount_ttc);

PERFORM pg_temp.dbtool_seed('crm.client_master_profile', to_jsonb(v)) FROM (VALUES
    ('CUST_001', 40, 2, 186.00, 4, 2, 3, '423', 'Promising', 'Red', 0.65, 'White', 0.35, 'fruit', 3.7, 0.9,
     'MEDIUM', 0.6)
) AS v (customer_code, recence_jours, nb_commandes, ca_ht, r_score, f_score, m_score, rfm, segment, top_family_1,
        top_family_1_ca_share, top_family_2, top_family_2_ca_share, aroma_axe_1, aroma_score_1, aroma_confidence,
        aroma_level, confidence);

-- config_hash = sha256 of the canonical JSON (sorted keys, no whitespace), as dbtool.repo.crm.reco_run computes it.
PERFORM pg_temp.dbtool_seed('crm.reco_run', to_jsonb(x)) FROM (
    SELECT 'SEED_RUN_001' AS run_id, encode(sha256(convert_to(c.canonical, 'UTF8')), 'hex') AS config_hash,
           c.canonical::jsonb AS config, 'COMPLETED' AS status, '2025-04-01 08:00:00+00' AS started_at,
           '2025-04-01 08:01:00+00' AS finished_at, 1 AS n_customers, 3 AS n_reco_items, 1 AS n_audit_items
    FROM (VALUES ('{"seed":true,"silence_days":30,"top_n":3}')) AS c (canonical)
) AS x;

PERFORM pg_temp.dbtool_seed('crm.reco_item', to_jsonb(v)) FROM (VALUES
    ('SEED_RUN_001', 'CUST_001', 'REBUY', 1, 'PINOT_NOIR_2022', 0.91, '{"family_match": 0.9, "recency": 0.8}'::jsonb,
     'Bought twice, due for a refill'),
    ('SEED_RUN_001', 'CUST_001', 'CROSS_SELL', 2, 'CHABLIS_2021', 0.74, '{"aroma_match": 0.7}',
     'Matches the fruity profile'),
    ('SEED_RUN_001', 'CUST_001', 'UPSELL', 3, 'MARGAUX_2018', 0.58, '{"premium_step": 0.6}',
     'A step up in the same family')
) AS v (run_id, customer_code, scenario, rank, product_key, score, reasons_json, explanation);

PERFORM pg_temp.dbtool_seed('crm.contact_event', to_jsonb(v), ARRAY['campaign', 'customer_code']) FROM (VALUES
    ('CUST_001', '2025-04-02', 'EMAIL', 'SEED-CAMPAIGN-001', 'SEED_RUN_001')
) AS v (customer_code, contact_date, channel, campaign, run_id);

PERFORM pg_temp.dbtool_seed('crm.audit_item', to_jsonb(v), ARRAY['run_id', 'flag_code']) FROM (VALUES
    ('SEED_RUN_001', 'CUST_001', 'INFO', 'SEED_LOW_HISTORY', 'Only two orders in history', '{"nb_commandes": 2}'::jsonb)
) AS v (run_id, customer_code, severity, flag_code, message, details);

PERFORM pg_temp.dbtool_seed('crm.outcome_event', to_jsonb(x), ARRAY['run_id', 'doc_ref']) FROM (
    SELECT 'SEED_RUN_001' AS run_id, 'CUST_001' AS customer_code, 'PINOT_NOIR_2022' AS product_key,
           ri.id AS reco_item_id, '2025-04-10' AS outcome_date, 'SEED-INV-0003' AS doc_ref, 120.00 AS amount_ht,
           true AS attributed
    FROM crm.reco_item ri
    WHERE ri.run_id = 'SEED_RUN_001' AND ri.customer_code = 'CUST_001' AND ri.rank = 1
) AS x;
END $seed$;
