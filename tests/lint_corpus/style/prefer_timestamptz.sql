ALTER TABLE crm.customer ADD COLUMN last_seen timestamp; -- expect: prefer-timestamptz
