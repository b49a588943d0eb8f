-- Remove exactly the rows of sql/seed/crm.sql, children first; a seed parent that non-seed rows
-- still reference is kept (deleting it would cascade to, or block on, rows that are not ours).
DELETE FROM crm.outcome_event WHERE run_id = 'SEED_RUN_001' AND doc_ref = 'SEED-INV-0003';
DELETE FROM crm.audit_item WHERE run_id = 'SEED_RUN_001' AND flag_code = 'SEED_LOW_HISTORY';
DELETE FROM crm.contact_event WHERE customer_code = 'CUST_001' AND campaign = 'SEED-CAMPAIGN-001';
DELETE FROM crm.reco_item ri WHERE run_id = 'SEED_RUN_001' AND customer_code = 'CUST_001'
    AND (rank, product_key) IN ((1, 'PINOT_NOIR_2022'), (2, 'CHABLIS_2021'), (3, 'MARGAUX_2018'))
    AND NOT EXISTS (SELECT 1 FROM crm.outcome_event o WHERE o.reco_item_id = ri.id);
DELETE FROM crm.reco_run r WHERE run_id = 'SEED_RUN_001'
    AND NOT EXISTS (SELECT 1 FROM crm.reco_item x WHERE x.run_id = r.run_id)
    AND NOT EXISTS (SELECT 1 FROM crm.audit_item x WHERE x.run_id = r.run_id)
    AND NOT EXISTS (SELECT 1 FROM crm.outcome_event x WHERE x.run_id = r.run_id)
    AND NOT EXISTS (SELECT 1 FROM crm.contact_event x WHERE x.run_id = r.run_id);
DELETE FROM crm.client_master_profile WHERE customer_code = 'CUST_001' AND segment = 'Promising' AND rfm = '423';
DELETE FROM crm.order_line WHERE doc_ref IN ('SEED-INV-0001', 'SEED-INV-0002') AND customer_code = 'CUST_001';
DELETE FROM crm.product_alias WHERE alias_label = 'pinot noir 2022' AND product_key = 'PINOT_NOIR_2022';
DELETE FROM crm.customer c WHERE customer_code = 'CUST_001'
    AND NOT EXISTS (SELECT 1 FROM crm.order_line x WHERE x.customer_code = c.customer_code)
    AND NOT EXISTS (SELECT 1 FROM crm.contact_event x WHERE x.customer_code = c.customer_code)
    AND NOT EXISTS (SELECT 1 FROM crm.client_master_profile x WHERE x.customer_code = c.customer_code)
    AND NOT EXISTS (SELECT 1 FROM crm.reco_item x WHERE x.customer_code = c.customer_code)
    AND NOT EXISTS (SELECT 1 FROM crm.audit_item x WHERE x.customer_code = c.customer_code)
    AND NOT EXISTS (SELECT 1 FROM crm.outcome_event x WHERE x.customer_code = c.customer_code);
DELETE FROM crm.product p WHERE product_key IN ('PINOT_NOIR_2022', 'CHABLIS_2021', 'MARGAUX_2018')
    AND NOT EXISTS (SELECT 1 FROM crm.product_alias x WHERE x.product_key = p.product_key)
    AND NOT EXISTS (SELECT 1 FROM crm.order_line x WHERE x.product_key = p.product_key)
    AND NOT EXISTS (SELECT 1 FROM crm.reco_item x WHERE x.product_key = p.product_key)
    AND NOT EXISTS (SELECT 1 FROM crm.outcome_event x WHERE x.product_key = p.product_key);
