SAVEPOINT before_comment;
COMMENT ON TABLE crm.customer IS 'Customers.';
RELEASE SAVEPOINT before_comment;
