-- Spec: 004_2e599804ad6cdf94.txt, DuckDB table message_history ("message history optimized
-- for analytics"; message_id, session_id, phone_number, role, content, intent, sentiment, confidence,
-- entities (JSON), response_time_ms; indexes session_id, phone_number + created_at, intent).
-- One row per chatbot.messages row, appended by `dbtool analytics sync`.
-- Designed: id is chatbot.messages.id (primary key; the sync watermark), because message_id (the WhatsApp
-- wamid, as in PostgreSQL) may be NULL; session_id is the external key chatbot.sessions.session_id.
CREATE TABLE IF NOT EXISTS message_history (
    id BIGINT NOT NULL PRIMARY KEY,
    message_id VARCHAR,
    session_id VARCHAR NOT NULL,
    phone_number VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    intent VARCHAR,
    sentiment VARCHAR,
    confidence DOUBLE,
    entities JSON NOT NULL DEFAULT '{}',
    response_time_ms INTEGER,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS message_history_session_id_idx ON message_history (session_id);
CREATE INDEX IF NOT EXISTS message_history_phone_number_created_at_idx ON message_history (phone_number, created_at);
CREATE INDEX IF NOT EXISTS message_history_intent_idx ON message_history (intent);
