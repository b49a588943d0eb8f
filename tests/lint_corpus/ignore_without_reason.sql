-- expect below: ignore-without-reason
-- dbtool: ignore create-index-not-concurrent
CREATE INDEX customer_first_name_idx ON crm.customer (first_name); -- expect: create-index-not-concurrent
