-- Spec: 002_541230fbc15c47ca.txt, table approvals ("Customer approvals for recommendations") and the
-- ApprovalStatus enum (PENDING, APPROVED, REJECTED).
-- Issue 13, item 9: a recommendation decided directly (approved or rejected without its approval request)
-- left the request PENDING for good: in the customer's queue, and impossible to decide. From now on the
-- repository closes an open request in the transaction that moves its recommendation out of PENDING, with
-- the recommendation's decision (dbtool/repo/infra/recommendations.py); the enum keeps the spec's three
-- labels. This file closes the requests left open before that, in the same way: APPROVED when the
-- recommendation was approved (or went on to execution), REJECTED when it was rejected; decided_at is the time
-- of closing; each closing is logged as an approval.<status> event. Idempotent: a second run finds none.
-- Comes after 110_events_seq.sql and 120_events_platform.sql (the events it writes get their seq).
WITH closed AS (
    UPDATE infra.approvals a
    SET status = (CASE WHEN r.status = 'REJECTED' THEN 'REJECTED' ELSE 'APPROVED' END)::infra.approval_status,
        decided_at = now(),
        comment = coalesce(a.comment, 'Closed: the recommendation was decided without this request.')
    FROM infra.recommendations r
    WHERE r.id = a.recommendation_id AND a.status = 'PENDING' AND r.status <> 'PENDING'
    RETURNING a.id, a.customer_id, a.recommendation_id, a.status, r.agent_id
)
INSERT INTO infra.events (customer_id, agent_id, recommendation_id, event_type, message, data)
SELECT customer_id, agent_id, recommendation_id, 'approval.' || lower(status::text),
       'Approval request closed: the recommendation was decided without it.',
       jsonb_build_object('status', status, 'approval_id', id, 'closed_by', 'recommendation')
FROM closed;

COMMENT ON COLUMN infra.approvals.approved_by IS
    'Who decided (user name or e-mail at the customer); NULL while PENDING, and when the request was closed by '
    'a decision on the recommendation itself that named nobody.';
COMMENT ON COLUMN infra.approvals.decided_at IS
    'When the status left PENDING (decided, or closed with its recommendation''s decision); NULL while PENDING.';
