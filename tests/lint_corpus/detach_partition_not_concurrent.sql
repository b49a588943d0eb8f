-- A partitioned table outside the module schemas (the test database has it; without a database lint
-- assumes a table of a schema the snapshot does not cover exists, and holds rows).
ALTER TABLE metrics.readings DETACH PARTITION metrics.readings_2024; -- expect: detach-partition-not-concurrent
