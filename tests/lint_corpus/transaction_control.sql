BEGIN; -- expect: transaction-control
COMMENT ON TABLE crm.customer IS 'Customers.';
COMMIT; -- expect: transaction-control
