-- Test corpus (issue 14, part 3): a foreign key on a table that holds rows. Added NOT VALID (SHARE ROW
-- EXCLUSIVE on both tables for a catalog update only; new rows are checked from then on), then validated
-- (SHARE UPDATE EXCLUSIVE on store_targets, ROW SHARE on stores: reads and writes go on while it scans).
-- Each step looks in pg_constraint first and is skipped, taking no lock, when done.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'planning.store_targets'::regclass
                   AND conname = 'store_targets_store_id_fkey') THEN
        ALTER TABLE planning.store_targets ADD CONSTRAINT store_targets_store_id_fkey
            FOREIGN KEY (store_id) REFERENCES planning.stores (store_id) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'planning.store_targets'::regclass
               AND conname = 'store_targets_store_id_fkey' AND NOT convalidated) THEN
        ALTER TABLE planning.store_targets VALIDATE CONSTRAINT store_targets_store_id_fkey;
    END IF;
END $$;
