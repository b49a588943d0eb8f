-- varchar(512) to varchar(100): every value's length is checked.
ALTER TABLE crm.customer ALTER COLUMN email TYPE varchar(100); -- expect: alter-column-type-rewrite
