-- transactional: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_last_name_idx ON crm.customer (last_name);
