-- Spec: 000_b948dd2ae880f0f9.txt ("created_at/updated_at on all operational tables").
-- Trigger function that keeps updated_at current on every UPDATE.

CREATE OR REPLACE FUNCTION crm.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

COMMENT ON FUNCTION crm.set_updated_at() IS
    'BEFORE UPDATE trigger function: sets NEW.updated_at to now().';
