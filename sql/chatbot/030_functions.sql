-- Spec: 004_2e599804ad6cdf94.txt, "Audit timestamps (created_at, updated_at)".
CREATE OR REPLACE FUNCTION chatbot.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

COMMENT ON FUNCTION chatbot.set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to the transaction time.';
