-- expect below: ignore-unused
-- dbtool: ignore drop-table: nothing is dropped here
COMMENT ON TABLE crm.customer IS 'Customers.';
