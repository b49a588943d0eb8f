-- Spec: 002_541230fbc15c47ca.txt, table customers ("Customer accounts with plans and
-- metadata"; unique emails and API keys; JSONB metadata).
-- Designed columns: name, api_key (nullable, so a customer can exist before a key is issued and a key can be
-- revoked by setting it NULL; UNIQUE still holds for every issued key), monthly_budget (the spend ceiling
-- the cost agent measures its savings against).
CREATE TABLE IF NOT EXISTS infra.customers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name varchar(255) NOT NULL,
    email varchar(255) NOT NULL,
    plan infra.customer_plan DEFAULT 'FREE' NOT NULL,
    status infra.customer_status DEFAULT 'ACTIVE' NOT NULL,
    api_key varchar(64),
    monthly_budget numeric(12,2),
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT customers_pkey PRIMARY KEY (id),
    CONSTRAINT customers_email_key UNIQUE (email),
    CONSTRAINT customers_api_key_key UNIQUE (api_key),
    CONSTRAINT customers_monthly_budget_check CHECK (monthly_budget >= 0)
);

CREATE INDEX IF NOT EXISTS customers_status_idx ON infra.customers (status);
CREATE INDEX IF NOT EXISTS customers_plan_idx ON infra.customers (plan);

CREATE OR REPLACE TRIGGER customers_set_updated_at BEFORE UPDATE ON infra.customers
    FOR EACH ROW EXECUTE FUNCTION infra.set_updated_at();

COMMENT ON TABLE infra.customers IS 'Customer accounts of OptiInfra, with their plan and status.';
COMMENT ON COLUMN infra.customers.email IS 'Login and contact e-mail; unique across customers (store lower-cased).';
COMMENT ON COLUMN infra.customers.api_key IS
    'API key the customer''s integrations authenticate with (64 chars: store a SHA-256 hex digest, not the '
    'plain key); unique; NULL when no key is issued or the key was revoked.';
COMMENT ON COLUMN infra.customers.monthly_budget IS 'Monthly infrastructure budget, in USD; NULL when not set.';
COMMENT ON COLUMN infra.customers.metadata IS 'Free-form customer data (company size, cloud accounts, contacts...).';
