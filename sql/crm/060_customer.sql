-- Spec: 001_705d406738b030a2.txt (Customer Table columns, ix_customer_email),
--       000_b948dd2ae880f0f9.txt (contact status flags, batch tracking, deduplicated master).
-- Designed: first_name/last_name (optional, for personalised messages and for humans reviewing
-- recommendations); the three flags NOT NULL (is_contactable defaults true, bounced/optout false);
-- created_at/updated_at. Indexes beyond the spec: batch_id (audit or roll back one import) and a
-- partial index of reachable customers (the set every run and campaign export starts from).

CREATE TABLE IF NOT EXISTS crm.customer (
    customer_code varchar(255) NOT NULL,
    email varchar(512),
    first_name varchar(255),
    last_name varchar(255),
    is_contactable boolean NOT NULL DEFAULT true,
    is_bounced boolean NOT NULL DEFAULT false,
    is_optout boolean NOT NULL DEFAULT false,
    batch_id varchar(255),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customer_pkey PRIMARY KEY (customer_code)
);

CREATE INDEX IF NOT EXISTS ix_customer_email ON crm.customer (email);
CREATE INDEX IF NOT EXISTS customer_batch_id_idx ON crm.customer (batch_id);
CREATE INDEX IF NOT EXISTS customer_customer_code_idx ON crm.customer (customer_code)
    WHERE is_contactable AND NOT is_bounced AND NOT is_optout;

CREATE OR REPLACE TRIGGER customer_set_updated_at BEFORE UPDATE ON crm.customer
    FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();

COMMENT ON TABLE crm.customer IS 'Customer master dimension, deduplicated across import batches.';
COMMENT ON COLUMN crm.customer.customer_code IS 'Customer identifier from the source CRM/ERP.';
COMMENT ON COLUMN crm.customer.email IS 'Contact email; NULL when unknown.';
COMMENT ON COLUMN crm.customer.is_contactable IS 'Customer may be contacted (consent and business rules).';
COMMENT ON COLUMN crm.customer.is_bounced IS 'Last email to this address bounced.';
COMMENT ON COLUMN crm.customer.is_optout IS 'Customer opted out of marketing contact.';
COMMENT ON COLUMN crm.customer.batch_id IS 'Import batch that last created or updated the row.';
COMMENT ON INDEX crm.customer_customer_code_idx IS
    'Partial index: reachable customers (contactable, not bounced, not opted out).';
