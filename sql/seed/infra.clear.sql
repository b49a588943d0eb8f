-- Remove exactly the rows of sql/seed/infra.sql (by their fixed UUIDs), children first.
-- A seed parent that non-seed rows still reference is kept (deleting it would cascade to, or
-- rewrite, rows that are not ours).
DELETE FROM infra.events WHERE id IN ('e0000000-0000-4000-8000-000000000001',
    'e0000000-0000-4000-8000-000000000002', 'e0000000-0000-4000-8000-000000000003');
DELETE FROM infra.recommendations r WHERE id IN ('c0000000-0000-4000-8000-000000000001',
    'c0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000003')
    AND NOT EXISTS (SELECT 1 FROM infra.events e WHERE e.recommendation_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM infra.approvals a WHERE a.recommendation_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM infra.optimizations o WHERE o.recommendation_id = r.id);
DELETE FROM infra.agents g WHERE id IN ('b0000000-0000-4000-8000-000000000001',
    'b0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000003',
    'b0000000-0000-4000-8000-000000000004', 'b0000000-0000-4000-8000-000000000005')
    AND NOT EXISTS (SELECT 1 FROM infra.events e WHERE e.agent_id = g.id)
    AND NOT EXISTS (SELECT 1 FROM infra.recommendations r WHERE r.agent_id = g.id)
    AND NOT EXISTS (SELECT 1 FROM infra.optimizations o WHERE o.agent_id = g.id);
DELETE FROM infra.customers c WHERE id IN ('a0000000-0000-4000-8000-000000000001',
    'a0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000003')
    AND NOT EXISTS (SELECT 1 FROM infra.events e WHERE e.customer_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM infra.recommendations r WHERE r.customer_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM infra.approvals a WHERE a.customer_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM infra.optimizations o WHERE o.customer_id = c.id);
