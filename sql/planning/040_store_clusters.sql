-- Spec: 003_5348cd3a2617ad4c.txt names store_clusters only as the target of stores.cluster_id
-- (VARCHAR(50)). Designed: cluster_name (what planners see in screens and reports), description
-- (how the cluster was formed, e.g. "large urban, high income"), created_at.

CREATE TABLE IF NOT EXISTS planning.store_clusters (
    cluster_id varchar(50) NOT NULL,
    cluster_name varchar(100) NOT NULL,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT store_clusters_pkey PRIMARY KEY (cluster_id)
);

COMMENT ON TABLE planning.store_clusters IS
    'Groups of similar stores (size, format, income, region) that are planned together.';
COMMENT ON COLUMN planning.store_clusters.cluster_name IS 'Display name of the cluster.';
COMMENT ON COLUMN planning.store_clusters.description IS 'How the cluster is defined.';
