ALTER TABLE crm.customer ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY; -- expect: add-column-rewrite
