-- Spec: 002_541230fbc15c47ca.txt, table events: the relationship tree hangs events off customers and off
-- agents; "Event logging for all significant actions".
-- Issue 13, item 10: agents are global (050_agents.sql: no customer_id), so an agent's own events (it
-- registered, it reported another status) belong to no customer. customer_id becomes nullable: NULL marks
-- such a platform event. A customer's events keep it, and still go with the customer (ON DELETE CASCADE).
ALTER TABLE infra.events ALTER COLUMN customer_id DROP NOT NULL;

COMMENT ON TABLE infra.events IS
    'System events and audit log entries: a customer''s, or the platform''s (customer_id NULL); append-only '
    '(no updated_at).';
COMMENT ON COLUMN infra.events.customer_id IS
    'Customer the event concerns; NULL for a platform event (an agent registering or reporting a new status).';
