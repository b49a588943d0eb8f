-- The column is added in an instant, but the transaction keeps ACCESS EXCLUSIVE on crm.customer while
-- the UPDATE fills every row: no reads, no writes until it commits.
ALTER TABLE crm.customer ADD COLUMN segment text; -- expect: access-exclusive-held
UPDATE crm.customer SET segment = 'unknown';
