-- The backfill runs first (row locks only); ACCESS EXCLUSIVE comes last, followed only by a comment
-- on the same table (an instant catalog change).
UPDATE crm.customer SET is_contactable = false WHERE is_optout;
ALTER TABLE crm.customer ALTER COLUMN is_contactable SET DEFAULT true;
COMMENT ON COLUMN crm.customer.is_contactable IS 'May be contacted.';
