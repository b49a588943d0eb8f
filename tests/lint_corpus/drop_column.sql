ALTER TABLE crm.customer DROP COLUMN batch_id; -- expect: drop-column
