-- Issue 14, part 3: prove updated_at NOT NULL without a long lock. Per table, a CHECK (updated_at IS NOT NULL)
-- added NOT VALID (ACCESS EXCLUSIVE for a catalog update only; new and updated rows are checked from then on),
-- then VALIDATE, which scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile. 250 then
-- sets NOT NULL from the validated CHECK, without a scan, and drops it.
-- Each step is skipped, without a lock, when done: the CHECK is added only while the column is nullable and it
-- is missing (a run that got past 250 never adds it again), and validated only while it is NOT VALID.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.order_line'::regclass
                   AND conname = 'order_line_updated_at_not_null')
       AND NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.order_line'::regclass
                AND attname = 'updated_at') THEN
        ALTER TABLE crm.order_line ADD CONSTRAINT order_line_updated_at_not_null CHECK (updated_at IS NOT NULL) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.order_line'::regclass
               AND conname = 'order_line_updated_at_not_null' AND NOT convalidated) THEN
        ALTER TABLE crm.order_line VALIDATE CONSTRAINT order_line_updated_at_not_null;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.contact_event'::regclass
                   AND conname = 'contact_event_updated_at_not_null')
       AND NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.contact_event'::regclass
                AND attname = 'updated_at') THEN
        ALTER TABLE crm.contact_event ADD CONSTRAINT contact_event_updated_at_not_null CHECK (updated_at IS NOT NULL) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.contact_event'::regclass
               AND conname = 'contact_event_updated_at_not_null' AND NOT convalidated) THEN
        ALTER TABLE crm.contact_event VALIDATE CONSTRAINT contact_event_updated_at_not_null;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.reco_item'::regclass
                   AND conname = 'reco_item_updated_at_not_null')
       AND NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.reco_item'::regclass
                AND attname = 'updated_at') THEN
        ALTER TABLE crm.reco_item ADD CONSTRAINT reco_item_updated_at_not_null CHECK (updated_at IS NOT NULL) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.reco_item'::regclass
               AND conname = 'reco_item_updated_at_not_null' AND NOT convalidated) THEN
        ALTER TABLE crm.reco_item VALIDATE CONSTRAINT reco_item_updated_at_not_null;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.audit_item'::regclass
                   AND conname = 'audit_item_updated_at_not_null')
       AND NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.audit_item'::regclass
                AND attname = 'updated_at') THEN
        ALTER TABLE crm.audit_item ADD CONSTRAINT audit_item_updated_at_not_null CHECK (updated_at IS NOT NULL) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.audit_item'::regclass
               AND conname = 'audit_item_updated_at_not_null' AND NOT convalidated) THEN
        ALTER TABLE crm.audit_item VALIDATE CONSTRAINT audit_item_updated_at_not_null;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.outcome_event'::regclass
                   AND conname = 'outcome_event_updated_at_not_null')
       AND NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.outcome_event'::regclass
                AND attname = 'updated_at') THEN
        ALTER TABLE crm.outcome_event ADD CONSTRAINT outcome_event_updated_at_not_null CHECK (updated_at IS NOT NULL) NOT VALID;
    END IF;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = 'crm.outcome_event'::regclass
               AND conname = 'outcome_event_updated_at_not_null' AND NOT convalidated) THEN
        ALTER TABLE crm.outcome_event VALIDATE CONSTRAINT outcome_event_updated_at_not_null;
    END IF;
END $$;
