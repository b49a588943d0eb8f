-- Spec: 004_2e599804ad6cdf94.txt, DuckDB table message_embeddings ("message embeddings for
-- semantic search"; message_id, session_id, phone_number, content, embedding, model_name; indexes session_id,
-- phone_number; cosine similarity search).
-- Written by the application through dbtool.analytics.embeddings.add_embeddings, never by the sync.
-- Designed: embedding is a fixed-size FLOAT[384] (the spec's DOUBLE[] would double the memory and allow
-- vectors of mixed sizes) and is stored L2-normalised, so cosine similarity is a dot product; another size
-- is a new file that adds a column or a table. id is chatbot.messages.id, as in message_history.
CREATE TABLE IF NOT EXISTS message_embeddings (
    id BIGINT NOT NULL PRIMARY KEY,
    message_id VARCHAR,
    session_id VARCHAR NOT NULL,
    phone_number VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    embedding FLOAT[384] NOT NULL,
    model_name VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE INDEX IF NOT EXISTS message_embeddings_session_id_idx ON message_embeddings (session_id);
CREATE INDEX IF NOT EXISTS message_embeddings_phone_number_idx ON message_embeddings (phone_number);
