-- Spec: 001_705d406738b030a2.txt (Product Table: is_active, "Available for recommendations").
-- Issue 13, item 12: list the active products (and the deactivated ones) in product_key order, a page at a
-- time (dbtool.repo.crm.product.list_active). The repository's keyset listing walks an index or refuses, and
-- no index led with is_active. (is_active, product_key) makes each page one index range scan, for either
-- value: deactivated products pile up (each vintage is a product, e.g. PINOT_NOIR_2022, retired when the next
-- one comes), so the active ones become the few a scan of the primary key would have to filter out. Not a
-- partial index WHERE is_active: the listing by an equality filter walks whole-table indexes only, and one
-- index serves both lists.
-- Online (issue 14): crm.product holds data, so the index is built CONCURRENTLY: writes go on meanwhile. It
-- cannot run in a transaction, so it is alone in this file and its migration (crm_0004) is not transactional;
-- psql runs this module's entry file without -1. lock_timeout bounds each wait of the build: for its SHARE
-- UPDATE EXCLUSIVE lock (which only DDL, VACUUM and other index builds contend for) and for transactions
-- older than the build to end. A build that times out or fails leaves an INVALID index: validate reports it,
-- and the next migrate drops it and builds it again.
-- transactional: false
-- lock_timeout: 1min

CREATE INDEX CONCURRENTLY IF NOT EXISTS product_is_active_product_key_idx ON crm.product (is_active, product_key);
