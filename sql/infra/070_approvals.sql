-- Spec: 002_541230fbc15c47ca.txt, table approvals ("Customer approvals for
-- recommendations"; under recommendations in the relationship tree).
-- Designed columns: customer_id (who owns the decision; lets a customer's approval queue be read without a
-- join), approved_by, comment, decided_at. UNIQUE (recommendation_id): one approval request per
-- recommendation, its status moving from PENDING to APPROVED or REJECTED.
CREATE TABLE IF NOT EXISTS infra.approvals (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    recommendation_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    status infra.approval_status DEFAULT 'PENDING' NOT NULL,
    approved_by varchar(255),
    comment text,
    decided_at timestamptz,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT approvals_pkey PRIMARY KEY (id),
    CONSTRAINT approvals_recommendation_id_key UNIQUE (recommendation_id),
    CONSTRAINT approvals_recommendation_id_fkey FOREIGN KEY (recommendation_id)
        REFERENCES infra.recommendations (id) ON DELETE CASCADE,
    CONSTRAINT approvals_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES infra.customers (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS approvals_customer_id_status_idx ON infra.approvals (customer_id, status);
CREATE INDEX IF NOT EXISTS approvals_status_created_at_idx ON infra.approvals (status, created_at);

CREATE OR REPLACE TRIGGER approvals_set_updated_at BEFORE UPDATE ON infra.approvals
    FOR EACH ROW EXECUTE FUNCTION infra.set_updated_at();

COMMENT ON TABLE infra.approvals IS 'A customer''s decision on a recommendation; one per recommendation.';
COMMENT ON COLUMN infra.approvals.approved_by IS 'Who decided (user name or e-mail at the customer); NULL while PENDING.';
COMMENT ON COLUMN infra.approvals.comment IS 'Reason given with the decision.';
COMMENT ON COLUMN infra.approvals.decided_at IS 'When the status left PENDING; NULL while PENDING.';
