-- now() is stable (pg_proc): PostgreSQL stores the default once, no rewrite. Nor for a constant.
ALTER TABLE crm.customer ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN crm.customer.updated_at IS 'Last change.';
