"""DuckDB analytics next to the chatbot's PostgreSQL: its own schema (sql/duckdb/), an incremental load
from PostgreSQL, exact cosine search over message embeddings, summaries, and per-user erasure."""
