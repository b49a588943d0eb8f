-- Spec: 002_541230fbc15c47ca.txt (OptiInfra core schema).
CREATE SCHEMA IF NOT EXISTS infra;

COMMENT ON SCHEMA infra IS
    'OptiInfra core: customers, the agents that watch their infrastructure, events, '
    'optimization recommendations, customer approvals and executed optimizations.';
