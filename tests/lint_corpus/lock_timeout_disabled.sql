-- transactional: false
-- dbtool sets lock_timeout 0 around a non-transactional file (for CONCURRENTLY builds): this ALTER
-- would queue every query on crm.customer behind it for as long as it waits.
ALTER TABLE crm.customer ALTER COLUMN is_contactable SET DEFAULT false; -- expect: lock-timeout-disabled
