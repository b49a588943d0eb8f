-- Spec: 003_5348cd3a2617ad4c.txt names categories only as the target of category_id
-- (VARCHAR(50), e.g. 'womens_dresses'). Designed: category_name (display name), department
-- (top-level grouping planners filter on, e.g. Womenswear), parent_category_id (optional
-- hierarchy; ON DELETE SET NULL so removing a parent leaves its children at top level), created_at.
-- Index beyond the PK: parent_category_id (FK; children of a category).

CREATE TABLE IF NOT EXISTS planning.categories (
    category_id varchar(50) NOT NULL,
    category_name varchar(100) NOT NULL,
    department varchar(100),
    parent_category_id varchar(50),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_pkey PRIMARY KEY (category_id),
    CONSTRAINT categories_parent_category_id_fkey FOREIGN KEY (parent_category_id)
        REFERENCES planning.categories (category_id) ON DELETE SET NULL,
    CONSTRAINT categories_parent_category_id_check CHECK (parent_category_id <> category_id)
);

CREATE INDEX IF NOT EXISTS categories_parent_category_id_idx ON planning.categories (parent_category_id);

COMMENT ON TABLE planning.categories IS 'Merchandise categories that sales and forecasts are planned by.';
COMMENT ON COLUMN planning.categories.category_id IS 'Category code, e.g. womens_dresses.';
COMMENT ON COLUMN planning.categories.category_name IS 'Display name, e.g. Women''s Dresses.';
COMMENT ON COLUMN planning.categories.department IS 'Top-level department, e.g. Womenswear.';
COMMENT ON COLUMN planning.categories.parent_category_id IS 'Parent category; NULL for a top-level category.';
