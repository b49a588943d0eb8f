-- Spec: 000_b948dd2ae880f0f9.txt ("Recommendation run metadata", "Deterministic Hashing -
-- config_hash for reproducible runs"), 001_705d406738b030a2.txt (run_id VARCHAR(255) via reco_item).
-- Placed before contact_event, reco_item, audit_item, outcome_event, which reference it.
-- Designed: config (the full run configuration; config_hash is the lowercase hex SHA-256 of its
-- canonical form, so two runs with the same hash used the same configuration); status lifecycle
-- PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED; started_at/finished_at; result counts;
-- error_message for failed runs. Indexes: config_hash (find runs with the same configuration)
-- and started_at (latest runs first).

CREATE TABLE IF NOT EXISTS crm.reco_run (
    run_id varchar(255) NOT NULL,
    config_hash char(64) NOT NULL,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    status varchar(20) NOT NULL DEFAULT 'PENDING',
    started_at timestamptz,
    finished_at timestamptz,
    n_customers integer NOT NULL DEFAULT 0,
    n_reco_items integer NOT NULL DEFAULT 0,
    n_audit_items integer NOT NULL DEFAULT 0,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reco_run_pkey PRIMARY KEY (run_id),
    CONSTRAINT reco_run_config_hash_check CHECK (config_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT reco_run_status_check
        CHECK (status::text IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    CONSTRAINT reco_run_finished_at_check CHECK (finished_at >= started_at),
    CONSTRAINT reco_run_n_customers_check CHECK (n_customers >= 0),
    CONSTRAINT reco_run_n_reco_items_check CHECK (n_reco_items >= 0),
    CONSTRAINT reco_run_n_audit_items_check CHECK (n_audit_items >= 0)
);

CREATE INDEX IF NOT EXISTS reco_run_config_hash_idx ON crm.reco_run (config_hash);
CREATE INDEX IF NOT EXISTS reco_run_started_at_idx ON crm.reco_run (started_at);

CREATE OR REPLACE TRIGGER reco_run_set_updated_at BEFORE UPDATE ON crm.reco_run
    FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();

COMMENT ON TABLE crm.reco_run IS 'One recommendation run: its configuration, status and result counts.';
COMMENT ON COLUMN crm.reco_run.config_hash IS
    'SHA-256 of the canonical run configuration, 64 lowercase hex characters; equal hash = same config.';
COMMENT ON COLUMN crm.reco_run.config IS 'Full run configuration (weights, silence window, scenario rules).';
COMMENT ON COLUMN crm.reco_run.status IS 'PENDING, RUNNING, COMPLETED, FAILED or CANCELLED.';
COMMENT ON COLUMN crm.reco_run.started_at IS 'When processing started; NULL while PENDING.';
COMMENT ON COLUMN crm.reco_run.finished_at IS 'When processing ended (any final status).';
COMMENT ON COLUMN crm.reco_run.n_customers IS 'Customers that received recommendations in this run.';
COMMENT ON COLUMN crm.reco_run.n_reco_items IS 'reco_item rows written by this run.';
COMMENT ON COLUMN crm.reco_run.n_audit_items IS 'audit_item rows written by this run.';
COMMENT ON COLUMN crm.reco_run.error_message IS 'Why the run failed; NULL otherwise.';
