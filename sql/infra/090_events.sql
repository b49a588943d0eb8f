-- Spec: 002_541230fbc15c47ca.txt, table events ("System events and audit logs";
-- JSONB data).
-- Designed columns: message (human-readable text for the audit log) and recommendation_id (ON DELETE SET
-- NULL): the recommendation an event is about (created, approved, executed, rolled back), so a
-- recommendation's history reads straight off the log; the event itself is kept when the recommendation is
-- deleted. This file comes last because of that reference.
CREATE TABLE IF NOT EXISTS infra.events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    customer_id uuid NOT NULL,
    agent_id uuid,
    recommendation_id uuid,
    event_type varchar(100) NOT NULL,
    severity infra.event_severity DEFAULT 'INFO' NOT NULL,
    message text,
    data jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES infra.customers (id) ON DELETE CASCADE,
    CONSTRAINT events_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES infra.agents (id) ON DELETE SET NULL,
    CONSTRAINT events_recommendation_id_fkey FOREIGN KEY (recommendation_id)
        REFERENCES infra.recommendations (id) ON DELETE SET NULL
);

CREATE INDEX IF NOT EXISTS events_customer_id_created_at_idx ON infra.events (customer_id, created_at);
CREATE INDEX IF NOT EXISTS events_agent_id_idx ON infra.events (agent_id);
CREATE INDEX IF NOT EXISTS events_recommendation_id_idx ON infra.events (recommendation_id);
CREATE INDEX IF NOT EXISTS events_event_type_idx ON infra.events (event_type);
CREATE INDEX IF NOT EXISTS events_severity_idx ON infra.events (severity);
CREATE INDEX IF NOT EXISTS events_created_at_idx ON infra.events (created_at);

COMMENT ON TABLE infra.events IS 'System events and audit log entries, per customer; append-only (no updated_at).';
COMMENT ON COLUMN infra.events.agent_id IS 'Agent that raised the event; NULL for platform events or once the agent is deleted.';
COMMENT ON COLUMN infra.events.recommendation_id IS 'Recommendation the event is about, if any; NULL once it is deleted.';
COMMENT ON COLUMN infra.events.event_type IS 'What happened, e.g. agent_registered, recommendation_created, optimization_failed.';
COMMENT ON COLUMN infra.events.message IS 'Human-readable description of the event.';
COMMENT ON COLUMN infra.events.data IS 'Event payload.';
