-- Test corpus (issue 14, part 3): the unique constraint takes over the index 920 built (USING INDEX: no
-- build, no scan; ACCESS EXCLUSIVE for a catalog update only). Skipped, without a lock, when done.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'planning.stores'::regclass
                   AND conname = 'stores_store_name_key') THEN
        ALTER TABLE planning.stores ADD CONSTRAINT stores_store_name_key UNIQUE USING INDEX stores_store_name_key;
    END IF;
END $$;
