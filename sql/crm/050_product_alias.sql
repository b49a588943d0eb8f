-- Spec: 000_b948dd2ae880f0f9.txt ("Label normalization mapping", ~1000 rows),
--       001_705d406738b030a2.txt ("Mapping from normalized labels to product keys").
-- The spec names the table only. Designed: the normalized label is the key (ingestion looks a raw
-- sales label up by its normalized form and gets one product_key); raw_label keeps a spelling seen
-- in the source for review; source records who made the mapping (MANUAL by a user, AUTO by fuzzy
-- matching, IMPORT from a mapping file). An alias dies with its product (ON DELETE CASCADE).

CREATE TABLE IF NOT EXISTS crm.product_alias (
    alias_label varchar(512) NOT NULL,
    product_key varchar(255) NOT NULL,
    raw_label varchar(512),
    source varchar(20) NOT NULL DEFAULT 'MANUAL',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_alias_pkey PRIMARY KEY (alias_label),
    CONSTRAINT product_alias_product_key_fkey FOREIGN KEY (product_key)
        REFERENCES crm.product (product_key) ON DELETE CASCADE,
    CONSTRAINT product_alias_source_check CHECK (source::text IN ('MANUAL', 'AUTO', 'IMPORT'))
);

CREATE INDEX IF NOT EXISTS product_alias_product_key_idx ON crm.product_alias (product_key);

CREATE OR REPLACE TRIGGER product_alias_set_updated_at BEFORE UPDATE ON crm.product_alias
    FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();

COMMENT ON TABLE crm.product_alias IS
    'Label normalization: maps a normalized product label found in sales files to a product_key.';
COMMENT ON COLUMN crm.product_alias.alias_label IS
    'Normalized label (trimmed, lower-case, accents and punctuation removed): the lookup key.';
COMMENT ON COLUMN crm.product_alias.raw_label IS 'A raw label as it appeared in a source file, for review.';
COMMENT ON COLUMN crm.product_alias.source IS
    'How the mapping was made: MANUAL (user), AUTO (fuzzy matching), IMPORT (mapping file).';
