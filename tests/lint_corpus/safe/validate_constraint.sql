-- SHARE UPDATE EXCLUSIVE while it scans: reads and writes go on.
ALTER TABLE crm.reco_item VALIDATE CONSTRAINT reco_item_product_key_fkey;
