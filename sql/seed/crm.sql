-- Demo rows of the crm module (spec 000/001 fixtures: product PINOT_NOIR_2022, customer CUST_001),
-- with enough around them to exercise every crm table. Idempotent: natural keys with ON CONFLICT DO
-- NOTHING; rows of identity-keyed tables are keyed by a SEED- doc_ref / campaign / flag and inserted
-- only when absent (identity ids are never given, so no setval is needed). Removed by crm.clear.sql.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/crm.sql "$DATABASE_URL"

INSERT INTO crm.product (product_key, product_label, family_crm, cepage, sucrosite_niveau, price_band, premium_tier,
                         aroma_fruit, aroma_floral, aroma_spice, aroma_mineral, aroma_acidity, aroma_body,
                         aroma_tannin, season_tags, global_popularity_score) VALUES
    ('PINOT_NOIR_2022', 'Pinot Noir 2022', 'Red', 'Pinot Noir', 'Dry', '15-25', 1, 4, 3, 2, 3, 4, 2, 2,
     '["autumn", "christmas"]', 0.82),
    ('CHABLIS_2021', 'Chablis 2021', 'White', 'Chardonnay', 'Dry', '15-25', 1, 3, 3, 1, 5, 4, 2, 1,
     '["summer"]', 0.74),
    ('MARGAUX_2018', 'Margaux 2018', 'Red', 'Cabernet Sauvignon', 'Dry', '50+', 3, 4, 2, 3, 2, 3, 5, 5,
     '["christmas"]', 0.66)
ON CONFLICT DO NOTHING;

INSERT INTO crm.product_alias (alias_label, product_key, raw_label, source) VALUES
    ('pinot noir 2022', 'PINOT_NOIR_2022', 'PINOT NOIR 2022 75CL', 'MANUAL')
ON CONFLICT DO NOTHING;

INSERT INTO crm.customer (customer_code, email, first_name, last_name, batch_id) VALUES
    ('CUST_001', 'cust001@example.com', 'Claire', 'Martin', 'SEED')
ON CONFLICT DO NOTHING;

INSERT INTO crm.order_line (customer_code, product_key, order_date, doc_ref, quantity, amount_ht, amount_ttc)
SELECT v.customer_code, v.product_key, v.order_date::date, v.doc_ref, v.quantity, v.ht, v.ttc
FROM (VALUES
    ('CUST_001', 'PINOT_NOIR_2022', '2024-11-15', 'SEED-INV-0001', 6, 120.00, 144.00),
    ('CUST_001', 'CHABLIS_2021', '2025-03-02', 'SEED-INV-0002', 3, 66.00, 79.20)
) AS v (customer_code, product_key, order_date, doc_ref, quantity, ht, ttc)
WHERE NOT EXISTS (SELECT 1 FROM crm.order_line o WHERE o.doc_ref = v.doc_ref);

INSERT INTO crm.client_master_profile (customer_code, recence_jours, nb_commandes, ca_ht, r_score, f_score, m_score,
                                       rfm, segment, top_family_1, top_family_1_ca_share, top_family_2,
                                       top_family_2_ca_share, aroma_axe_1, aroma_score_1, aroma_confidence,
                                       aroma_level, confidence) VALUES
    ('CUST_001', 40, 2, 186.00, 4, 2, 3, '423', 'Promising', 'Red', 0.65, 'White', 0.35, 'fruit', 3.7, 0.9,
     'MEDIUM', 0.6)
ON CONFLICT DO NOTHING;

-- config_hash = sha256 of the canonical JSON (sorted keys, no whitespace), as dbtool.repo.crm.reco_run computes it.
INSERT INTO crm.reco_run (run_id, config_hash, config, status, started_at, finished_at, n_customers, n_reco_items,
                          n_audit_items)
SELECT 'SEED_RUN_001', encode(sha256(convert_to(c.canonical, 'UTF8')), 'hex'), c.canonical::jsonb, 'COMPLETED',
       '2025-04-01 08:00:00+00', '2025-04-01 08:01:00+00', 1, 3, 1
FROM (VALUES ('{"seed":true,"silence_days":30,"top_n":3}')) AS c (canonical)
ON CONFLICT DO NOTHING;

INSERT INTO crm.reco_item (run_id, customer_code, scenario, rank, product_key, score, reasons_json, explanation)
VALUES
    ('SEED_RUN_001', 'CUST_001', 'REBUY', 1, 'PINOT_NOIR_2022', 0.91, '{"family_match": 0.9, "recency": 0.8}',
     'Bought twice, due for a refill'),
    ('SEED_RUN_001', 'CUST_001', 'CROSS_SELL', 2, 'CHABLIS_2021', 0.74, '{"aroma_match": 0.7}',
     'Matches the fruity profile'),
    ('SEED_RUN_001', 'CUST_001', 'UPSELL', 3, 'MARGAUX_2018', 0.58, '{"premium_step": 0.6}',
     'A step up in the same family')
ON CONFLICT DO NOTHING;

INSERT INTO crm.contact_event (customer_code, contact_date, channel, campaign, run_id)
SELECT 'CUST_001', '2025-04-02', 'EMAIL', 'SEED-CAMPAIGN-001', 'SEED_RUN_001'
WHERE NOT EXISTS (SELECT 1 FROM crm.contact_event WHERE campaign = 'SEED-CAMPAIGN-001' AND customer_code = 'CUST_001');

INSERT INTO crm.audit_item (run_id, customer_code, severity, flag_code, message, details)
SELECT 'SEED_RUN_001', 'CUST_001', 'INFO', 'SEED_LOW_HISTORY', 'Only two orders in history', '{"nb_commandes": 2}'
WHERE NOT EXISTS (SELECT 1 FROM crm.audit_item WHERE run_id = 'SEED_RUN_001' AND flag_code = 'SEED_LOW_HISTORY');

INSERT INTO crm.outcome_event (run_id, customer_code, product_key, reco_item_id, outcome_date, doc_ref, amount_ht,
                               attributed)
SELECT 'SEED_RUN_001', 'CUST_001', 'PINOT_NOIR_2022', ri.id, '2025-04-10', 'SEED-INV-0003', 120.00, true
FROM crm.reco_item ri
WHERE ri.run_id = 'SEED_RUN_001' AND ri.customer_code = 'CUST_001' AND ri.rank = 1
  AND NOT EXISTS (SELECT 1 FROM crm.outcome_event WHERE run_id = 'SEED_RUN_001' AND doc_ref = 'SEED-INV-0003');
