-- NOT VALID: only new rows are checked; VALIDATE CONSTRAINT follows in a migration of its own.
ALTER TABLE crm.reco_item
    ADD CONSTRAINT reco_item_product_key_fkey2 FOREIGN KEY (product_key) REFERENCES crm.product (product_key)
    NOT VALID;
