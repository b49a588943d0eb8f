-- A longer varchar: PostgreSQL changes only the catalog.
ALTER TABLE crm.customer ALTER COLUMN first_name TYPE varchar(500);
