-- clock_timestamp() is volatile (pg_proc): every row gets its own value, so the table is rewritten.
ALTER TABLE crm.customer ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp(); -- expect: add-column-rewrite
