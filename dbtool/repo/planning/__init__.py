"""Repository functions of the planning schema, one module per table."""

import psycopg


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact rows per planning table (the spec's "table statistics" after an upload)."""
    from ...stats import row_counts

    return row_counts(conn, "planning")
