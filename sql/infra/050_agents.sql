-- Spec: 002_541230fbc15c47ca.txt, table agents ("Registered agents (Cost, Performance,
-- Resource, Application, Orchestrator)"; JSONB capabilities).
-- Agents are global: in the spec's relationship tree they hang off no customer, so there is no customer_id.
-- Designed columns: name, version, endpoint, last_heartbeat; UNIQUE (type, name) so an agent that restarts
-- re-registers onto its own row instead of creating a duplicate.
CREATE TABLE IF NOT EXISTS infra.agents (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    type infra.agent_type NOT NULL,
    name varchar(255) NOT NULL,
    version varchar(50),
    status infra.agent_status DEFAULT 'STARTING' NOT NULL,
    endpoint varchar(255),
    capabilities jsonb DEFAULT '[]'::jsonb NOT NULL,
    last_heartbeat timestamptz,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT agents_pkey PRIMARY KEY (id),
    CONSTRAINT agents_type_name_key UNIQUE (type, name)
);

CREATE INDEX IF NOT EXISTS agents_status_idx ON infra.agents (status);
CREATE INDEX IF NOT EXISTS agents_last_heartbeat_idx ON infra.agents (last_heartbeat);

CREATE OR REPLACE TRIGGER agents_set_updated_at BEFORE UPDATE ON infra.agents
    FOR EACH ROW EXECUTE FUNCTION infra.set_updated_at();

COMMENT ON TABLE infra.agents IS 'Agents registered with the platform; global, shared by all customers.';
COMMENT ON COLUMN infra.agents.name IS 'Agent instance name; unique within its type.';
COMMENT ON COLUMN infra.agents.version IS 'Software version the agent reported at registration.';
COMMENT ON COLUMN infra.agents.endpoint IS 'Base URL the orchestrator reaches the agent at.';
COMMENT ON COLUMN infra.agents.capabilities IS 'JSON array of what the agent can do, e.g. ["spot_migration", "rightsizing"].';
COMMENT ON COLUMN infra.agents.last_heartbeat IS 'Time of the last heartbeat; an old value means the agent is gone.';
