ALTER TABLE crm.customer ADD CONSTRAINT customer_email_not_null CHECK (email IS NOT NULL) NOT VALID;
