-- varchar to text is binary-coercible (pg_cast): no rewrite.
ALTER TABLE crm.customer ALTER COLUMN email TYPE text;
