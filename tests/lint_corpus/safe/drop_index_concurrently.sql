-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS crm.customer_batch_id_idx;
