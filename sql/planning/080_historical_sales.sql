-- Spec: 003_5348cd3a2617ad4c.txt, "historical_sales" (taken exactly). The spec's foreign keys have
-- no ON DELETE clause: NO ACTION (history keeps its stores and categories).
-- Indexes beyond the spec: store_id and category_id (FKs; training data is read per store/category).

CREATE TABLE IF NOT EXISTS planning.historical_sales (
    sale_id varchar(100) NOT NULL,
    week_start_date date NOT NULL,
    category_id varchar(50) NOT NULL,
    store_id varchar(50) NOT NULL,
    units_sold integer NOT NULL,
    CONSTRAINT historical_sales_pkey PRIMARY KEY (sale_id),
    CONSTRAINT historical_sales_category_id_fkey FOREIGN KEY (category_id)
        REFERENCES planning.categories (category_id),
    CONSTRAINT historical_sales_store_id_fkey FOREIGN KEY (store_id)
        REFERENCES planning.stores (store_id)
);

CREATE INDEX IF NOT EXISTS historical_sales_store_id_idx ON planning.historical_sales (store_id);
CREATE INDEX IF NOT EXISTS historical_sales_category_id_idx ON planning.historical_sales (category_id);

COMMENT ON TABLE planning.historical_sales IS
    'Weekly unit sales per store and category; the training data for forecasts.';
COMMENT ON COLUMN planning.historical_sales.sale_id IS 'Row identifier from the uploaded file.';
COMMENT ON COLUMN planning.historical_sales.week_start_date IS 'First day of the sales week.';
COMMENT ON COLUMN planning.historical_sales.units_sold IS 'Units sold in that week, store and category.';
