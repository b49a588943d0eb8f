DROP INDEX crm.customer_batch_id_idx; -- expect: drop-index-not-concurrent
