ALTER TABLE crm.customer RENAME COLUMN email TO email_address; -- expect: rename-column
