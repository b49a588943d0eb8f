-- crm.reco_item.product_key leads reco_item_product_key_idx: only the validation is the problem.
ALTER TABLE crm.reco_item
    ADD CONSTRAINT reco_item_product_key_fkey2 FOREIGN KEY (product_key) REFERENCES crm.product (product_key); -- expect: add-foreign-key-valid
