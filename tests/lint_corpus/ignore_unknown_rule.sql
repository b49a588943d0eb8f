-- expect below: ignore-unknown-rule
-- dbtool: ignore no-such-rule: a typo
COMMENT ON TABLE crm.customer IS 'Customers.';
-- expect below: bad-dbtool-comment
-- dbtool: ignroe drop-table: misspelt
COMMENT ON TABLE crm.product IS 'Products.';
