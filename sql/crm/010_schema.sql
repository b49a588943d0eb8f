-- Spec: 000_b948dd2ae880f0f9.txt, 001_705d406738b030a2.txt (CRM recommendation platform).
-- The schema that holds the platform's 10 tables.

CREATE SCHEMA IF NOT EXISTS crm;

COMMENT ON SCHEMA crm IS
    'CRM recommendation platform: product catalog, customers, sales, contact history, '
    'customer feature profiles, recommendation runs (rank 1..3 per customer), audit flags '
    'and campaign outcomes.';
