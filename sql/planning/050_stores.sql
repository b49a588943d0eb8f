-- Spec: 003_5348cd3a2617ad4c.txt, "stores" (taken exactly: sizes, NOT NULLs; FLOAT -> double precision).
-- The spec's foreign key has no ON DELETE clause: NO ACTION (a cluster with stores cannot be deleted).
-- Index beyond the spec: cluster_id (FK; stores of a cluster).

CREATE TABLE IF NOT EXISTS planning.stores (
    store_id varchar(50) NOT NULL,
    store_name varchar(100) NOT NULL,
    cluster_id varchar(50),
    store_size_sqft integer NOT NULL,
    location_tier varchar(20) NOT NULL,
    median_income integer NOT NULL,
    store_format varchar(50) NOT NULL,
    region varchar(50) NOT NULL,
    avg_weekly_sales_12mo double precision NOT NULL,
    CONSTRAINT stores_pkey PRIMARY KEY (store_id),
    CONSTRAINT stores_cluster_id_fkey FOREIGN KEY (cluster_id)
        REFERENCES planning.store_clusters (cluster_id)
);

CREATE INDEX IF NOT EXISTS stores_cluster_id_idx ON planning.stores (cluster_id);

COMMENT ON TABLE planning.stores IS 'Store master data used for clustering and allocation.';
COMMENT ON COLUMN planning.stores.store_id IS 'Store code, e.g. S001.';
COMMENT ON COLUMN planning.stores.cluster_id IS 'Store cluster; NULL when not yet clustered.';
COMMENT ON COLUMN planning.stores.store_size_sqft IS 'Selling area in square feet.';
COMMENT ON COLUMN planning.stores.location_tier IS 'Location tier (e.g. A, B, C).';
COMMENT ON COLUMN planning.stores.median_income IS 'Median household income of the catchment area, whole currency units.';
COMMENT ON COLUMN planning.stores.store_format IS 'Store format (e.g. mall, street, outlet).';
COMMENT ON COLUMN planning.stores.avg_weekly_sales_12mo IS 'Average weekly sales over the last 12 months.';
COMMENT ON COLUMN planning.stores.store_name IS 'Display name of the store.';
COMMENT ON COLUMN planning.stores.region IS 'Sales region the store reports to.';
