-- No `-- transactional: false`: the file runs in its migration's transaction, where CONCURRENTLY fails.
CREATE INDEX CONCURRENTLY customer_first_name_idx ON crm.customer (first_name); -- expect: concurrently-in-transaction
