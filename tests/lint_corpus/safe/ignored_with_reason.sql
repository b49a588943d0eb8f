-- An ignore on or above a statement waives that rule there, with its reason (reported as ignored).
-- dbtool: ignore create-index-not-concurrent: crm.reco_run holds one row per nightly run (a few hundred)
CREATE INDEX reco_run_finished_at_idx ON crm.reco_run (finished_at);
DROP INDEX crm.customer_batch_id_idx; -- dbtool: ignore drop-index-not-concurrent: crm.customer is empty until the import
