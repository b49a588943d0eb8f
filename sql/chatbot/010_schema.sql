-- Spec: 004_2e599804ad6cdf94.txt (WhatsApp car-sales chatbot, PostgreSQL part).
CREATE SCHEMA IF NOT EXISTS chatbot;

COMMENT ON SCHEMA chatbot IS
    'WhatsApp car-sales chatbot: users (with LGPD consent), conversation sessions, messages, qualified leads, '
    'car interactions, hand-offs to human agents and daily metrics. Deleting a user deletes all their data.';
