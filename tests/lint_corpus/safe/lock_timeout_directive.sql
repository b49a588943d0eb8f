-- transactional: false
-- lock_timeout: 5s
ALTER TABLE crm.customer ALTER COLUMN is_contactable SET DEFAULT true;
