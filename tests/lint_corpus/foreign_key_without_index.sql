-- A new table: its foreign key needs no NOT VALID, but deleting a customer scans it without an index.
CREATE TABLE crm.loyalty_card (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_code varchar(255) NOT NULL REFERENCES crm.customer (customer_code), -- expect: foreign-key-without-index
    points integer NOT NULL DEFAULT 0
);
