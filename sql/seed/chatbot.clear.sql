-- Remove exactly the rows of sql/seed/chatbot.sql, children first; a seed session or user that
-- non-seed rows still reference is kept (deleting it would cascade to rows that are not ours).
DELETE FROM chatbot.qualified_leads l USING chatbot.sessions s
    WHERE l.session_id = s.id AND s.session_id = 'seed-session-0001'
      AND l.recommended_cars = '["seed-car-001", "seed-car-002"]';
DELETE FROM chatbot.messages WHERE message_id IN ('seed-msg-0001', 'seed-msg-0002', 'seed-msg-0003', 'seed-msg-0004');
DELETE FROM chatbot.sessions s WHERE session_id IN ('seed-session-0001', 'seed-session-0002')
    AND NOT EXISTS (SELECT 1 FROM chatbot.messages m WHERE m.session_id = s.id)
    AND NOT EXISTS (SELECT 1 FROM chatbot.car_interactions c WHERE c.session_id = s.id)
    AND NOT EXISTS (SELECT 1 FROM chatbot.human_handoffs h WHERE h.session_id = s.id)
    AND NOT EXISTS (SELECT 1 FROM chatbot.qualified_leads l WHERE l.session_id = s.id);
DELETE FROM chatbot.users u WHERE phone_number IN ('+5511900000001', '+5511900000002', '+5511900000003')
    AND NOT EXISTS (SELECT 1 FROM chatbot.sessions s WHERE s.user_id = u.id)
    AND NOT EXISTS (SELECT 1 FROM chatbot.qualified_leads l WHERE l.user_id = u.id);
