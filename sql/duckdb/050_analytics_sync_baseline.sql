-- Bookkeeping of dbtool itself, not in the spec:
-- analytics_sync_baseline describes what PostgreSQL looked like when the last `dbtool analytics sync` copied
-- (dbtool.analytics.sync, "Change detection"): that run's snapshot (pg_current_snapshot() as text), the row
-- counts of chatbot.users, sessions and messages in it, and which server, database and tables it read. The
-- next sync asks PostgreSQL in one query whether anything changed since; when nothing did it copies nothing.
-- One row (id 1), written in the same DuckDB transaction as the rows it describes; format is the sync's
-- (another one, e.g. an older dbtool's, is no baseline). Deleting the row makes the next sync compare every
-- row, as erase_phone does.
CREATE TABLE IF NOT EXISTS analytics_sync_baseline (
    id INTEGER NOT NULL PRIMARY KEY,
    format INTEGER NOT NULL,
    server VARCHAR NOT NULL,
    snapshot VARCHAR NOT NULL,
    users BIGINT NOT NULL,
    sessions BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
