-- Spec: 000_b948dd2ae880f0f9.txt ("created_at/updated_at on all operational tables").
-- Issue 14, part 3: the five crm tables created with created_at only (order_line, contact_event, reco_item,
-- audit_item, outcome_event) get updated_at, kept current by crm.set_updated_at() like the other five. Each
-- holds rows, and some are large (order_line ~100,000+, reco_item ~30,000+, contact_event ~50,000+), so the
-- change is made online, in steps, by one migration that is not transactional (crm_0005_updated_at):
--   170 (this file) adds the column, nullable and without a default, then gives it DEFAULT now() for new rows:
--       catalog only, no rewrite and no scan. now() is stable, so even ADD COLUMN ... DEFAULT now() would not
--       rewrite (PostgreSQL 11+ stores the value once), but every existing row would then claim to have
--       changed at the moment of the migration; instead they carry their created_at (180-220);
--   180-220 fill existing rows in batches (`-- batch:`), each batch a short transaction of its own;
--   230 creates the triggers, after the batches (a BEFORE UPDATE trigger would overwrite created_at with now());
--   240 proves NOT NULL with a CHECK added NOT VALID, then VALIDATE (no lock that blocks reads or writes);
--   250 sets NOT NULL, which PostgreSQL 12+ takes from the validated CHECK without scanning, then drops it.
-- Rows the application updates while 180-220 run, before 230, keep their created_at rather than the time of
-- that update: the window is the backfill's few seconds.
-- Every step looks in the catalog first and does nothing, taking no lock, when it is done: a run stopped
-- anywhere (a lock_timeout, kill -9) leaves a state the next `dbtool migrate` completes, without waiting behind
-- the application for steps already done, and `validate` reports what is not done yet (a missing or nullable
-- column, a missing trigger, a NOT VALID or extra CHECK). The column's comment goes with it, in its transaction.
-- Each ALTER TABLE takes ACCESS EXCLUSIVE for a catalog update only, waiting at most lock_timeout for it
-- (--ddl-lock-timeout, 10s; `migrate --lock-retries N` tries again).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.order_line'::regclass
                   AND attname = 'updated_at' AND NOT attisdropped) THEN
        ALTER TABLE crm.order_line ADD COLUMN updated_at timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
        COMMENT ON COLUMN crm.order_line.updated_at IS
            'When the row last changed (BEFORE UPDATE trigger); rows older than the column carry their created_at.';
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.contact_event'::regclass
                   AND attname = 'updated_at' AND NOT attisdropped) THEN
        ALTER TABLE crm.contact_event ADD COLUMN updated_at timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
        COMMENT ON COLUMN crm.contact_event.updated_at IS
            'When the row last changed (BEFORE UPDATE trigger); rows older than the column carry their created_at.';
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.reco_item'::regclass
                   AND attname = 'updated_at' AND NOT attisdropped) THEN
        ALTER TABLE crm.reco_item ADD COLUMN updated_at timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
        COMMENT ON COLUMN crm.reco_item.updated_at IS
            'When the row last changed (BEFORE UPDATE trigger); rows older than the column carry their created_at.';
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.audit_item'::regclass
                   AND attname = 'updated_at' AND NOT attisdropped) THEN
        ALTER TABLE crm.audit_item ADD COLUMN updated_at timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
        COMMENT ON COLUMN crm.audit_item.updated_at IS
            'When the row last changed (BEFORE UPDATE trigger); rows older than the column carry their created_at.';
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.outcome_event'::regclass
                   AND attname = 'updated_at' AND NOT attisdropped) THEN
        ALTER TABLE crm.outcome_event ADD COLUMN updated_at timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
        COMMENT ON COLUMN crm.outcome_event.updated_at IS
            'When the row last changed (BEFORE UPDATE trigger); rows older than the column carry their created_at.';
    END IF;
END $$;
