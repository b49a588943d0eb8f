-- expect below: bad-directive
-- lock_timeout: ten seconds
COMMENT ON TABLE crm.customer IS 'Customers.';
