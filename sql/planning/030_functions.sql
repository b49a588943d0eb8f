-- Spec: 003_5348cd3a2617ad4c.txt. Trigger function for the updated_at column of planning.workflows.

CREATE OR REPLACE FUNCTION planning.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

COMMENT ON FUNCTION planning.set_updated_at() IS
    'BEFORE UPDATE trigger function: sets NEW.updated_at to now().';
