-- Bookkeeping of dbtool itself, not in the spec:
-- analytics_sync_state holds the watermark of each incremental copy from PostgreSQL (source 'messages':
-- the last chatbot.messages.id copied; source 'sessions': the last chatbot.sessions.updated_at copied). It is
-- updated in the same DuckDB transaction as the rows it describes, so an interrupted sync loses and
-- duplicates nothing.
-- analytics_embeddings_version is bumped by every write to message_embeddings made through dbtool, so a
-- process can tell that its in-memory search matrix is stale with one tiny read.
CREATE TABLE IF NOT EXISTS analytics_sync_state (
    source VARCHAR NOT NULL PRIMARY KEY,
    last_id BIGINT,
    last_updated_at TIMESTAMPTZ,
    rows_copied BIGINT NOT NULL DEFAULT 0,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS analytics_embeddings_version (
    id INTEGER NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);
