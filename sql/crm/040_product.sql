-- Spec: 001_705d406738b030a2.txt (Product Table columns, ix_product_family),
--       000_b948dd2ae880f0f9.txt (7 aroma axes 1-5, premium tier, season tags, popularity).
-- Columns are the spec's. 000 mentions an "aroma_axes" JSON field; 001's column table gives the
-- seven axes as INTEGER columns, which we keep (checkable 1..5, directly comparable in SQL).
-- Designed: premium_tier NOT NULL DEFAULT 0 (every product has a tier for UPSELL, 0 = entry level);
-- is_active NOT NULL DEFAULT true; season_tags NOT NULL DEFAULT '[]' and must be a JSON array;
-- aroma axes stay nullable (profile not yet tasted/entered); created_at/updated_at.

CREATE TABLE IF NOT EXISTS crm.product (
    product_key varchar(255) NOT NULL,
    product_label varchar(512) NOT NULL,
    family_crm varchar(255),
    cepage varchar(255),
    sucrosite_niveau varchar(50),
    price_band varchar(50),
    premium_tier integer NOT NULL DEFAULT 0,
    aroma_fruit integer,
    aroma_floral integer,
    aroma_spice integer,
    aroma_mineral integer,
    aroma_acidity integer,
    aroma_body integer,
    aroma_tannin integer,
    is_active boolean NOT NULL DEFAULT true,
    season_tags jsonb NOT NULL DEFAULT '[]'::jsonb,
    global_popularity_score double precision,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_pkey PRIMARY KEY (product_key),
    CONSTRAINT product_product_label_key UNIQUE (product_label),
    CONSTRAINT product_premium_tier_check CHECK (premium_tier BETWEEN 0 AND 3),
    CONSTRAINT product_aroma_fruit_check CHECK (aroma_fruit BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_floral_check CHECK (aroma_floral BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_spice_check CHECK (aroma_spice BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_mineral_check CHECK (aroma_mineral BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_acidity_check CHECK (aroma_acidity BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_body_check CHECK (aroma_body BETWEEN 1 AND 5),
    CONSTRAINT product_aroma_tannin_check CHECK (aroma_tannin BETWEEN 1 AND 5),
    CONSTRAINT product_season_tags_check CHECK (jsonb_typeof(season_tags) = 'array')
);

CREATE INDEX IF NOT EXISTS ix_product_family ON crm.product (family_crm);

CREATE OR REPLACE TRIGGER product_set_updated_at BEFORE UPDATE ON crm.product
    FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();

COMMENT ON TABLE crm.product IS
    'Product dimension (wines) with aroma profile, premium tier and season tags; source of recommendations.';
COMMENT ON COLUMN crm.product.product_key IS 'Stable product identifier, e.g. PINOT_NOIR_2022.';
COMMENT ON COLUMN crm.product.product_label IS 'Human-readable canonical name; unique.';
COMMENT ON COLUMN crm.product.family_crm IS 'Wine family used by the CRM (Red, White, Rosé, ...).';
COMMENT ON COLUMN crm.product.cepage IS 'Grape variety.';
COMMENT ON COLUMN crm.product.sucrosite_niveau IS 'Sugar level (Dry, Off-dry, Sweet).';
COMMENT ON COLUMN crm.product.price_band IS 'Price category label.';
COMMENT ON COLUMN crm.product.premium_tier IS 'Premium level 0..3 (0 = entry); UPSELL recommends a higher tier.';
COMMENT ON COLUMN crm.product.aroma_fruit IS 'Aroma axis Fruit, intensity 1 (low) to 5 (high); NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_floral IS 'Aroma axis Floral, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_spice IS 'Aroma axis Spice, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_mineral IS 'Aroma axis Mineral, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_acidity IS 'Aroma axis Acidity, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_body IS 'Aroma axis Body, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.aroma_tannin IS 'Aroma axis Tannin, intensity 1..5; NULL = not profiled.';
COMMENT ON COLUMN crm.product.is_active IS 'Available for recommendations; deactivate instead of deleting.';
COMMENT ON COLUMN crm.product.season_tags IS 'JSON array of season tags, e.g. ["summer", "christmas"].';
COMMENT ON COLUMN crm.product.global_popularity_score IS 'Catalog-wide popularity, used by the WINBACK scenario.';
