"""Repository functions of the infra schema, one module per table."""
