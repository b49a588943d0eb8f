-- Test corpus (issue 14, part 3): the index of a unique constraint on store names, built CONCURRENTLY so
-- that writes to planning.stores go on meanwhile; 930 then makes it the constraint. A build that fails (a
-- duplicate name, a timeout, a killed run) leaves an INVALID index: validate reports it, and the next
-- migrate drops it and builds it again. lock_timeout bounds each of the build's waits.
-- transactional: false
-- lock_timeout: 1min

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS stores_store_name_key ON planning.stores (store_name);
