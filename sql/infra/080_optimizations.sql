-- Spec: 002_541230fbc15c47ca.txt, table optimizations ("Executed optimizations and
-- results"; JSONB result; check progress 0-100).
-- recommendation_id is nullable with ON DELETE SET NULL: the relationship tree hangs optimizations off the
-- customer as well as off the recommendation, i.e. an executed change to a customer's infrastructure is
-- part of that customer's history (what ran, when, actual savings) and outlives the recommendation that
-- proposed it; deleting the customer still deletes it (customer_id ON DELETE CASCADE).
-- Designed columns: started_at, completed_at, error_message, actual_savings.
CREATE TABLE IF NOT EXISTS infra.optimizations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    recommendation_id uuid,
    customer_id uuid NOT NULL,
    agent_id uuid,
    status infra.optimization_status DEFAULT 'QUEUED' NOT NULL,
    progress integer DEFAULT 0 NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    result jsonb,
    error_message text,
    actual_savings numeric(12,2),
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT optimizations_pkey PRIMARY KEY (id),
    CONSTRAINT optimizations_recommendation_id_fkey FOREIGN KEY (recommendation_id)
        REFERENCES infra.recommendations (id) ON DELETE SET NULL,
    CONSTRAINT optimizations_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES infra.customers (id) ON DELETE CASCADE,
    CONSTRAINT optimizations_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES infra.agents (id) ON DELETE SET NULL,
    CONSTRAINT optimizations_progress_check CHECK (progress BETWEEN 0 AND 100)
);

CREATE INDEX IF NOT EXISTS optimizations_recommendation_id_idx ON infra.optimizations (recommendation_id);
CREATE INDEX IF NOT EXISTS optimizations_customer_id_status_idx ON infra.optimizations (customer_id, status);
CREATE INDEX IF NOT EXISTS optimizations_customer_id_created_at_idx
    ON infra.optimizations (customer_id, created_at);
CREATE INDEX IF NOT EXISTS optimizations_agent_id_idx ON infra.optimizations (agent_id);
CREATE INDEX IF NOT EXISTS optimizations_status_idx ON infra.optimizations (status);

CREATE OR REPLACE TRIGGER optimizations_set_updated_at BEFORE UPDATE ON infra.optimizations
    FOR EACH ROW EXECUTE FUNCTION infra.set_updated_at();

COMMENT ON TABLE infra.optimizations IS 'One execution of a recommendation on a customer''s infrastructure, and its outcome.';
COMMENT ON COLUMN infra.optimizations.recommendation_id IS
    'Recommendation executed; NULL once that recommendation is deleted (the execution record is kept).';
COMMENT ON COLUMN infra.optimizations.agent_id IS 'Agent that executed it; NULL once that agent is deleted.';
COMMENT ON COLUMN infra.optimizations.progress IS 'Completion, in percent (0 to 100).';
COMMENT ON COLUMN infra.optimizations.result IS 'Execution result: changed resources, measurements; NULL until finished.';
COMMENT ON COLUMN infra.optimizations.error_message IS 'Why the execution FAILED or was ROLLED_BACK.';
COMMENT ON COLUMN infra.optimizations.actual_savings IS 'Measured saving, in USD per month; NULL until measured.';
COMMENT ON COLUMN infra.optimizations.started_at IS 'When execution started (status EXECUTING).';
COMMENT ON COLUMN infra.optimizations.completed_at IS 'When execution ended (COMPLETED, FAILED or ROLLED_BACK).';
