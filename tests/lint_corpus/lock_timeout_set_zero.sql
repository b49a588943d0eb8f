SET lock_timeout = 0;
ALTER TABLE crm.customer ALTER COLUMN is_bounced SET DEFAULT false; -- expect: lock-timeout-disabled
