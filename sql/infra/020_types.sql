-- Spec: 002_541230fbc15c47ca.txt, "Enums (9 Types)"; labels in the spec's order.
-- Guarded so the file can run twice; an existing type is left as it is.

DO $$ BEGIN
    CREATE TYPE infra.customer_plan AS ENUM ('FREE', 'STARTUP', 'ENTERPRISE');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.customer_status AS ENUM ('ACTIVE', 'SUSPENDED', 'CHURNED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.agent_type AS ENUM ('ORCHESTRATOR', 'COST', 'PERFORMANCE', 'RESOURCE', 'APPLICATION');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.agent_status AS ENUM ('STARTING', 'HEALTHY', 'DEGRADED', 'FAILED', 'STOPPED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.event_severity AS ENUM ('INFO', 'WARNING', 'ERROR', 'CRITICAL');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.recommendation_priority AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.recommendation_status AS ENUM
        ('PENDING', 'APPROVED', 'REJECTED', 'EXECUTING', 'COMPLETED', 'FAILED', 'ROLLED_BACK');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.approval_status AS ENUM ('PENDING', 'APPROVED', 'REJECTED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE infra.optimization_status AS ENUM ('QUEUED', 'EXECUTING', 'COMPLETED', 'FAILED', 'ROLLED_BACK');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

COMMENT ON TYPE infra.customer_plan IS 'Subscription plan of a customer.';
COMMENT ON TYPE infra.customer_status IS 'Account state of a customer.';
COMMENT ON TYPE infra.agent_type IS 'Kind of agent: the orchestrator or one of the four specialist agents.';
COMMENT ON TYPE infra.agent_status IS 'Health of a registered agent, as last reported.';
COMMENT ON TYPE infra.event_severity IS 'Severity of a system event.';
COMMENT ON TYPE infra.recommendation_priority IS 'How urgent a recommendation is.';
COMMENT ON TYPE infra.recommendation_status IS 'Life cycle of a recommendation, from proposal to execution or rollback.';
COMMENT ON TYPE infra.approval_status IS 'Decision of a customer on a recommendation.';
COMMENT ON TYPE infra.optimization_status IS 'Life cycle of one execution of a recommendation.';
