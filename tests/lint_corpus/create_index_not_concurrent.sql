-- An index on a table that holds rows, built in the migration's transaction: writes wait for it.
CREATE INDEX customer_last_name_idx ON crm.customer (last_name); -- expect: create-index-not-concurrent
