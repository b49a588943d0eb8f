-- A table created in the same migration holds no rows yet: its indexes need no CONCURRENTLY, and its
-- foreign key (covered by an index) needs no NOT VALID.
CREATE TABLE IF NOT EXISTS crm.loyalty_card (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_code varchar(255) NOT NULL REFERENCES crm.customer (customer_code),
    points integer NOT NULL DEFAULT 0 CHECK (points >= 0)
);
CREATE INDEX IF NOT EXISTS loyalty_card_customer_code_idx ON crm.loyalty_card (customer_code);
ALTER TABLE crm.loyalty_card ADD CONSTRAINT loyalty_card_points_max CHECK (points < 1000000);
ALTER TABLE crm.loyalty_card ALTER COLUMN points SET NOT NULL;
ALTER TABLE crm.loyalty_card RENAME COLUMN points TO balance;
COMMENT ON TABLE crm.loyalty_card IS 'Loyalty cards.';
