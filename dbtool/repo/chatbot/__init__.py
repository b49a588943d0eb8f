"""Repository functions of the chatbot schema, one module per table."""
