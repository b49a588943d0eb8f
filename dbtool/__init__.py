"""dbtool: raw-SQL migrations and exact schema validation for PostgreSQL."""

__version__ = "0.1.0"
