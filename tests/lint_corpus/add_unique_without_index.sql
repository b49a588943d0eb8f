ALTER TABLE crm.customer ADD CONSTRAINT customer_email_key UNIQUE (email); -- expect: add-unique-without-index
