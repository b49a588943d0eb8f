-- Statements inside a DO block run in the same transaction: they are checked too.
DO $$
BEGIN
    ALTER TABLE crm.customer ADD COLUMN score integer; -- expect: access-exclusive-held
    UPDATE crm.customer SET score = 0;
    ALTER TABLE crm.customer ALTER COLUMN score SET NOT NULL; -- expect: set-not-null
END
$$;
