-- The index was built CONCURRENTLY by an earlier migration; attaching it is a catalog change.
ALTER TABLE crm.customer ADD CONSTRAINT customer_email_key UNIQUE USING INDEX ix_customer_email_unique;
