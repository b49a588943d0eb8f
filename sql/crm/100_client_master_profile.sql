-- Spec: 001_705d406738b030a2.txt (ClientMasterProfile feature groups and column names),
--       000_b948dd2ae880f0f9.txt (RFM + segment, top 2 preferences, aroma top 3 axes, diversity,
--       confidence).
-- 001 lists the column names by pattern; completed here: top_*_2_ca_share for every group,
-- aroma_axe_3/aroma_score_3 (000: "top 3 axes").
-- Designed: r/f/m scores 1..5 (quintiles); rfm = the three digits concatenated ('545');
-- ca_ht numeric(12,2) like order_line; *_ca_share fractions 0..1 of the customer's CA;
-- aroma_axe_n one of the 7 axes, named as product's aroma_<axe> column suffix;
-- aroma_score_n the CA-weighted mean of that product axis, so 1..5; aroma_confidence 0..1;
-- aroma_level NONE/LOW/MEDIUM/HIGH (how marked the aroma profile is);
-- family/grape diversity scores 0..1 (normalized entropy: 0 = always the same, 1 = spread);
-- confidence 0..1 of the whole profile (grows with order history);
-- computed_at = when the feature job computed the row, plus created_at/updated_at.
-- One row per customer, deleted with the customer (ON DELETE CASCADE).
-- Index beyond the PK: segment (campaign targeting by RFM segment).

CREATE TABLE IF NOT EXISTS crm.client_master_profile (
    customer_code varchar(255) NOT NULL,
    recence_jours integer,
    nb_commandes integer NOT NULL DEFAULT 0,
    ca_ht numeric(12,2) NOT NULL DEFAULT 0,
    r_score integer,
    f_score integer,
    m_score integer,
    rfm varchar(10),
    segment varchar(50),
    top_family_1 varchar(255),
    top_family_1_ca_share double precision,
    top_family_2 varchar(255),
    top_family_2_ca_share double precision,
    top_grape_1 varchar(255),
    top_grape_1_ca_share double precision,
    top_grape_2 varchar(255),
    top_grape_2_ca_share double precision,
    top_sugar_1 varchar(50),
    top_sugar_1_ca_share double precision,
    top_sugar_2 varchar(50),
    top_sugar_2_ca_share double precision,
    top_budget_1 varchar(50),
    top_budget_1_ca_share double precision,
    top_budget_2 varchar(50),
    top_budget_2_ca_share double precision,
    aroma_axe_1 varchar(20),
    aroma_score_1 double precision,
    aroma_axe_2 varchar(20),
    aroma_score_2 double precision,
    aroma_axe_3 varchar(20),
    aroma_score_3 double precision,
    aroma_confidence double precision,
    aroma_level varchar(20),
    family_diversity_score double precision,
    grape_diversity_score double precision,
    confidence double precision,
    computed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT client_master_profile_pkey PRIMARY KEY (customer_code),
    CONSTRAINT client_master_profile_customer_code_fkey FOREIGN KEY (customer_code)
        REFERENCES crm.customer (customer_code) ON DELETE CASCADE,
    CONSTRAINT client_master_profile_recence_jours_check CHECK (recence_jours >= 0),
    CONSTRAINT client_master_profile_nb_commandes_check CHECK (nb_commandes >= 0),
    CONSTRAINT client_master_profile_r_score_check CHECK (r_score BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_f_score_check CHECK (f_score BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_m_score_check CHECK (m_score BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_top_family_1_ca_share_check
        CHECK (top_family_1_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_family_2_ca_share_check
        CHECK (top_family_2_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_grape_1_ca_share_check
        CHECK (top_grape_1_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_grape_2_ca_share_check
        CHECK (top_grape_2_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_sugar_1_ca_share_check
        CHECK (top_sugar_1_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_sugar_2_ca_share_check
        CHECK (top_sugar_2_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_budget_1_ca_share_check
        CHECK (top_budget_1_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_top_budget_2_ca_share_check
        CHECK (top_budget_2_ca_share BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_aroma_axe_1_check
        CHECK (aroma_axe_1::text IN ('fruit', 'floral', 'spice', 'mineral', 'acidity', 'body', 'tannin')),
    CONSTRAINT client_master_profile_aroma_axe_2_check
        CHECK (aroma_axe_2::text IN ('fruit', 'floral', 'spice', 'mineral', 'acidity', 'body', 'tannin')),
    CONSTRAINT client_master_profile_aroma_axe_3_check
        CHECK (aroma_axe_3::text IN ('fruit', 'floral', 'spice', 'mineral', 'acidity', 'body', 'tannin')),
    CONSTRAINT client_master_profile_aroma_score_1_check CHECK (aroma_score_1 BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_aroma_score_2_check CHECK (aroma_score_2 BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_aroma_score_3_check CHECK (aroma_score_3 BETWEEN 1 AND 5),
    CONSTRAINT client_master_profile_aroma_confidence_check CHECK (aroma_confidence BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_aroma_level_check
        CHECK (aroma_level::text IN ('NONE', 'LOW', 'MEDIUM', 'HIGH')),
    CONSTRAINT client_master_profile_family_diversity_score_check
        CHECK (family_diversity_score BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_grape_diversity_score_check
        CHECK (grape_diversity_score BETWEEN 0 AND 1),
    CONSTRAINT client_master_profile_confidence_check CHECK (confidence BETWEEN 0 AND 1)
);

CREATE INDEX IF NOT EXISTS client_master_profile_segment_idx ON crm.client_master_profile (segment);

CREATE OR REPLACE TRIGGER client_master_profile_set_updated_at BEFORE UPDATE ON crm.client_master_profile
    FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();

COMMENT ON TABLE crm.client_master_profile IS
    'Consolidated per-customer features: RFM, top-2 preferences, aroma profile, diversity, confidence.';
COMMENT ON COLUMN crm.client_master_profile.recence_jours IS 'Days since the last purchase (R of RFM).';
COMMENT ON COLUMN crm.client_master_profile.nb_commandes IS 'Number of distinct orders (F of RFM).';
COMMENT ON COLUMN crm.client_master_profile.ca_ht IS 'Total revenue excluding tax, in euros (M of RFM).';
COMMENT ON COLUMN crm.client_master_profile.r_score IS 'Recency score 1..5 (5 = most recent).';
COMMENT ON COLUMN crm.client_master_profile.f_score IS 'Frequency score 1..5 (5 = most frequent).';
COMMENT ON COLUMN crm.client_master_profile.m_score IS 'Monetary score 1..5 (5 = highest revenue).';
COMMENT ON COLUMN crm.client_master_profile.rfm IS 'R, F and M scores concatenated, e.g. ''545''.';
COMMENT ON COLUMN crm.client_master_profile.segment IS 'RFM segment label (e.g. Champions, At risk).';
COMMENT ON COLUMN crm.client_master_profile.top_family_1 IS 'Wine family with the largest share of the customer''s CA.';
COMMENT ON COLUMN crm.client_master_profile.top_family_1_ca_share IS 'Share 0..1 of the customer''s CA in top_family_1.';
COMMENT ON COLUMN crm.client_master_profile.top_family_2 IS 'Second wine family by CA.';
COMMENT ON COLUMN crm.client_master_profile.top_family_2_ca_share IS 'Share 0..1 of the customer''s CA in top_family_2.';
COMMENT ON COLUMN crm.client_master_profile.top_grape_1 IS 'Grape variety (cepage) with the largest CA share.';
COMMENT ON COLUMN crm.client_master_profile.top_grape_1_ca_share IS 'Share 0..1 of CA in top_grape_1.';
COMMENT ON COLUMN crm.client_master_profile.top_grape_2 IS 'Second grape variety by CA.';
COMMENT ON COLUMN crm.client_master_profile.top_grape_2_ca_share IS 'Share 0..1 of CA in top_grape_2.';
COMMENT ON COLUMN crm.client_master_profile.top_sugar_1 IS 'Sugar level (sucrosite_niveau) with the largest CA share.';
COMMENT ON COLUMN crm.client_master_profile.top_sugar_1_ca_share IS 'Share 0..1 of CA in top_sugar_1.';
COMMENT ON COLUMN crm.client_master_profile.top_sugar_2 IS 'Second sugar level by CA.';
COMMENT ON COLUMN crm.client_master_profile.top_sugar_2_ca_share IS 'Share 0..1 of CA in top_sugar_2.';
COMMENT ON COLUMN crm.client_master_profile.top_budget_1 IS 'Price band with the largest CA share.';
COMMENT ON COLUMN crm.client_master_profile.top_budget_1_ca_share IS 'Share 0..1 of CA in top_budget_1.';
COMMENT ON COLUMN crm.client_master_profile.top_budget_2 IS 'Second price band by CA.';
COMMENT ON COLUMN crm.client_master_profile.top_budget_2_ca_share IS 'Share 0..1 of CA in top_budget_2.';
COMMENT ON COLUMN crm.client_master_profile.aroma_axe_1 IS
    'Strongest aroma axis: fruit, floral, spice, mineral, acidity, body or tannin.';
COMMENT ON COLUMN crm.client_master_profile.aroma_score_1 IS 'CA-weighted mean 1..5 of product aroma on aroma_axe_1.';
COMMENT ON COLUMN crm.client_master_profile.aroma_axe_2 IS 'Second aroma axis.';
COMMENT ON COLUMN crm.client_master_profile.aroma_score_2 IS 'CA-weighted mean 1..5 on aroma_axe_2.';
COMMENT ON COLUMN crm.client_master_profile.aroma_axe_3 IS 'Third aroma axis.';
COMMENT ON COLUMN crm.client_master_profile.aroma_score_3 IS 'CA-weighted mean 1..5 on aroma_axe_3.';
COMMENT ON COLUMN crm.client_master_profile.aroma_confidence IS
    'Confidence 0..1 in the aroma profile (share of CA on aroma-profiled products).';
COMMENT ON COLUMN crm.client_master_profile.aroma_level IS 'How marked the aroma profile is: NONE, LOW, MEDIUM, HIGH.';
COMMENT ON COLUMN crm.client_master_profile.family_diversity_score IS
    'Diversity of families bought, 0..1 (normalized entropy; 0 = a single family).';
COMMENT ON COLUMN crm.client_master_profile.grape_diversity_score IS
    'Diversity of grape varieties bought, 0..1 (normalized entropy).';
COMMENT ON COLUMN crm.client_master_profile.confidence IS 'Overall profile confidence 0..1 (grows with history).';
COMMENT ON COLUMN crm.client_master_profile.computed_at IS 'When the feature job computed this row.';
