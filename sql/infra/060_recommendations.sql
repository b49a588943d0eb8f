-- Spec: 002_541230fbc15c47ca.txt, table recommendations ("Optimization recommendations
-- from agents"; DECIMAL savings; JSONB data; check confidence_score 0.0-1.0).
-- Designed: agent_id nullable with ON DELETE SET NULL (a retired agent's advice stays with the customer);
-- customer_id ON DELETE CASCADE (a customer's recommendations go with the customer).
CREATE TABLE IF NOT EXISTS infra.recommendations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    customer_id uuid NOT NULL,
    agent_id uuid,
    type varchar(100) NOT NULL,
    priority infra.recommendation_priority DEFAULT 'MEDIUM' NOT NULL,
    status infra.recommendation_status DEFAULT 'PENDING' NOT NULL,
    title varchar(255) NOT NULL,
    description text,
    estimated_savings numeric(12,2),
    confidence_score numeric(4,3) NOT NULL,
    data jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT recommendations_pkey PRIMARY KEY (id),
    CONSTRAINT recommendations_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES infra.customers (id) ON DELETE CASCADE,
    CONSTRAINT recommendations_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES infra.agents (id) ON DELETE SET NULL,
    CONSTRAINT recommendations_confidence_score_check CHECK (confidence_score BETWEEN 0 AND 1)
);

CREATE INDEX IF NOT EXISTS recommendations_customer_id_created_at_idx
    ON infra.recommendations (customer_id, created_at);
CREATE INDEX IF NOT EXISTS recommendations_customer_id_status_idx
    ON infra.recommendations (customer_id, status);
CREATE INDEX IF NOT EXISTS recommendations_agent_id_idx ON infra.recommendations (agent_id);
CREATE INDEX IF NOT EXISTS recommendations_status_priority_idx ON infra.recommendations (status, priority);
CREATE INDEX IF NOT EXISTS recommendations_type_idx ON infra.recommendations (type);
CREATE INDEX IF NOT EXISTS recommendations_created_at_idx ON infra.recommendations (created_at);

CREATE OR REPLACE TRIGGER recommendations_set_updated_at BEFORE UPDATE ON infra.recommendations
    FOR EACH ROW EXECUTE FUNCTION infra.set_updated_at();

COMMENT ON TABLE infra.recommendations IS 'Optimization recommendations an agent made for a customer.';
COMMENT ON COLUMN infra.recommendations.agent_id IS 'Agent that made the recommendation; NULL once that agent is deleted.';
COMMENT ON COLUMN infra.recommendations.type IS 'Kind of optimization, e.g. spot_migration, rightsizing, reserved_instances.';
COMMENT ON COLUMN infra.recommendations.estimated_savings IS 'Expected saving, in USD per month.';
COMMENT ON COLUMN infra.recommendations.confidence_score IS 'Agent''s confidence in the recommendation, 0.000 to 1.000.';
COMMENT ON COLUMN infra.recommendations.data IS 'Recommendation details: affected resources, before/after configuration.';
