ALTER TABLE crm.customer ALTER COLUMN email SET NOT NULL; -- expect: set-not-null
