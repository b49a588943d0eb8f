-- Spec: 002_541230fbc15c47ca.txt, "updated_at timestamps with auto-update".
CREATE OR REPLACE FUNCTION infra.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

COMMENT ON FUNCTION infra.set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to the transaction time.';
