"""infra: events in the order they were written (seq), platform events, open approvals closed (issue 13).

sql/infra/110_events_seq.sql: infra.events.seq, a bigint identity, and the (customer_id | recommendation_id |
agent_id, seq) indexes lists of events are read by; sql/infra/120_events_platform.sql: infra.events.customer_id
nullable, for an agent's own events; sql/infra/130_approvals_closed_by_recommendation.sql: approval requests
left PENDING after their recommendation was decided directly are closed with its decision.

Rollback drops seq and its indexes and puts the two single-column indexes back, and makes customer_id NOT
NULL again: it refuses (nothing changed) while platform events exist, rather than delete them; delete them
first (`DELETE FROM infra.events WHERE customer_id IS NULL`) if that is what you want. The approvals closed
stay closed (they were decided), the comments go back to their earlier text.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"infra_0002_privileges"}

ROLLBACK = """
DO $$
DECLARE
    n bigint := (SELECT count(*) FROM infra.events WHERE customer_id IS NULL);
BEGIN
    IF n > 0 THEN
        RAISE EXCEPTION 'infra.events holds % platform event(s) (customer_id NULL), which infra before '
                        'infra_0003 cannot hold; delete them first if you mean to (DELETE FROM infra.events '
                        'WHERE customer_id IS NULL)', n;
    END IF;
END
$$;
ALTER TABLE infra.events ALTER COLUMN customer_id SET NOT NULL;
CREATE INDEX IF NOT EXISTS events_agent_id_idx ON infra.events (agent_id);
CREATE INDEX IF NOT EXISTS events_recommendation_id_idx ON infra.events (recommendation_id);
DROP INDEX IF EXISTS infra.events_customer_id_seq_idx;
DROP INDEX IF EXISTS infra.events_recommendation_id_seq_idx;
DROP INDEX IF EXISTS infra.events_agent_id_seq_idx;
ALTER TABLE infra.events DROP COLUMN IF EXISTS seq;
COMMENT ON TABLE infra.events IS 'System events and audit log entries, per customer; append-only (no updated_at).';
COMMENT ON COLUMN infra.events.customer_id IS NULL;
COMMENT ON COLUMN infra.approvals.approved_by IS 'Who decided (user name or e-mail at the customer); NULL while PENDING.';
COMMENT ON COLUMN infra.approvals.decided_at IS 'When the status left PENDING; NULL while PENDING.';
"""

step(
    apply_files(__file__, "110_events_seq.sql", "120_events_platform.sql",
                "130_approvals_closed_by_recommendation.sql"),
    rollback_sql(__file__, ROLLBACK),
)
