-- Spec: 004_2e599804ad6cdf94.txt, DuckDB table conversation_context ("structured
-- conversation summaries for cheap queries"; session_id, phone_number, turn_id, summary, key_entities (JSON),
-- user_profile (JSON), state; indexes session_id, phone_number).
-- One row per chatbot session, filled by `dbtool analytics sync` from chatbot.sessions (+ users, messages).
-- Designed: session_id is the external key chatbot.sessions.session_id (primary key, which also serves the
-- spec's session_id index); qualification_score feeds the sessions -> qualified leads funnel (>= 60 is a
-- qualified lead, as for chatbot.qualified_leads); source_updated_at is chatbot.sessions.updated_at, the
-- sync watermark, so a re-sent unchanged session is not rewritten.
CREATE TABLE IF NOT EXISTS conversation_context (
    session_id VARCHAR NOT NULL PRIMARY KEY,
    phone_number VARCHAR NOT NULL,
    turn_id INTEGER NOT NULL DEFAULT 0,
    summary VARCHAR,
    key_entities JSON NOT NULL DEFAULT '{}',
    user_profile JSON NOT NULL DEFAULT '{}',
    state VARCHAR NOT NULL,
    qualification_score DECIMAL(5,2) NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS conversation_context_phone_number_idx ON conversation_context (phone_number);
