-- Demo rows of the infra module (spec 002: 3 customers, 5 agents, 3 events, 3 recommendations).
-- Idempotent: fixed UUIDs (a0.. customers, b0.. agents, c0.. recommendations, e0.. events); a row whose
-- key is taken is left as it is. Each row the seed inserts is recorded in dbtool.seeded_row
-- (_seed_functions.sql), in the same transaction, so that infra.clear.sql removes only those rows, and
-- only while they still hold these values.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/infra.sql "$DATABASE_URL"

\ir _seed_functions.sql

DO $seed$ BEGIN
PERFORM pg_temp.dbtool_seed('infra.customers', to_jsonb(v)) FROM (VALUES
    ('a0000000-0000-4000-8000-000000000001', 'Acme Corp', 'admin@acme.com', 'ENTERPRISE', 'ACTIVE', 50000.00,
     '{"seed": true, "industry": "manufacturing"}'::jsonb),
    ('a0000000-0000-4000-8000-000000000002', 'StartupCo', 'founder@startup.co', 'STARTUP', 'ACTIVE', 5000.00,
     '{"seed": true, "industry": "saas"}'),
    ('a0000000-0000-4000-8000-000000000003', 'Demo Customer', 'demo@example.com', 'FREE', 'ACTIVE', NULL,
     '{"seed": true}')
) AS v (id, name, email, plan, status, monthly_budget, metadata);

PERFORM pg_temp.dbtool_seed('infra.agents', to_jsonb(v)) FROM (VALUES
    ('b0000000-0000-4000-8000-000000000001', 'ORCHESTRATOR', 'orchestrator-1', '1.0.0', 'HEALTHY',
     'http://orchestrator:8000', '["routing", "coordination"]'::jsonb),
    ('b0000000-0000-4000-8000-000000000002', 'COST', 'cost-agent-1', '1.0.0', 'HEALTHY',
     'http://cost-agent:8001', '["spot_migration", "reserved_instances", "rightsizing"]'),
    ('b0000000-0000-4000-8000-000000000003', 'PERFORMANCE', 'performance-agent-1', '1.0.0', 'HEALTHY',
     'http://performance-agent:8002', '["latency_analysis", "scaling"]'),
    ('b0000000-0000-4000-8000-000000000004', 'RESOURCE', 'resource-agent-1', '1.0.0', 'HEALTHY',
     'http://resource-agent:8003', '["gpu_utilization", "memory_optimization"]'),
    ('b0000000-0000-4000-8000-000000000005', 'APPLICATION', 'application-agent-1', '1.0.0', 'HEALTHY',
     'http://application-agent:8004', '["quality_monitoring", "regression_detection"]')
) AS v (id, type, name, version, status, endpoint, capabilities);

PERFORM pg_temp.dbtool_seed('infra.recommendations', to_jsonb(v)) FROM (VALUES
    ('c0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
     'b0000000-0000-4000-8000-000000000002', 'spot_migration', 'HIGH', 'PENDING',
     'Migrate batch workers to spot instances', 'Batch workloads tolerate interruption.',
     12000.00, 0.920, '{"seed": true, "instances": 12}'::jsonb),
    ('c0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000002',
     'b0000000-0000-4000-8000-000000000003', 'autoscaling', 'MEDIUM', 'APPROVED',
     'Scale API pods on request latency', NULL, 800.00, 0.750, '{"seed": true}'),
    ('c0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000003',
     'b0000000-0000-4000-8000-000000000004', 'rightsizing', 'LOW', 'PENDING',
     'Downsize the idle GPU node', NULL, 300.00, 0.600, '{"seed": true}')
) AS v (id, customer_id, agent_id, type, priority, status, title, description, estimated_savings, confidence_score,
        data);

PERFORM pg_temp.dbtool_seed('infra.events', to_jsonb(v)) FROM (VALUES
    ('e0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
     'b0000000-0000-4000-8000-000000000001', NULL, 'customer.onboarded', 'INFO', 'Acme Corp onboarded',
     '{"seed": true}'::jsonb),
    ('e0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001',
     'b0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000001', 'recommendation.created',
     'INFO', 'Spot migration proposed', '{"seed": true}'),
    ('e0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000002',
     'b0000000-0000-4000-8000-000000000003', NULL, 'latency.high', 'WARNING', 'p95 latency above 500 ms',
     '{"seed": true, "p95_ms": 620}')
) AS v (id, customer_id, agent_id, recommendation_id, event_type, severity, message, data);
END $seed$;
