"""Repository functions of the crm schema, one module per table."""
