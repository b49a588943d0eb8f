-- The NOT VALID check (added by an earlier migration) is validated first, without blocking writes;
-- SET NOT NULL then needs no scan, and takes ACCESS EXCLUSIVE last (the DROP after it is instant).
ALTER TABLE crm.customer VALIDATE CONSTRAINT customer_email_not_null;
ALTER TABLE crm.customer ALTER COLUMN email SET NOT NULL;
ALTER TABLE crm.customer DROP CONSTRAINT customer_email_not_null;
