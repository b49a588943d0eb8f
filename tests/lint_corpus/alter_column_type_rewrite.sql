-- integer to bigint: pg_cast converts by a function, so every row (and index) is rewritten.
ALTER TABLE crm.order_line ALTER COLUMN quantity TYPE bigint; -- expect: alter-column-type-rewrite
