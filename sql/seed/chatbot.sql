-- Demo rows of the chatbot module (spec 004: 3 users with consent, 2 sessions in different states,
-- 4 messages, 1 qualified lead). Idempotent: users keyed by phone_number, sessions by session_id,
-- messages by message_id, the lead by its session; identity ids are never given (no setval needed).
-- Removed exactly by chatbot.clear.sql.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/chatbot.sql "$DATABASE_URL"

INSERT INTO chatbot.users (phone_number, name, email, consent, consent_at, consent_version) VALUES
    ('+5511900000001', 'Ana Souza', 'ana.souza@example.com', true, '2025-01-10 12:00:00+00', 'v1'),
    ('+5511900000002', 'Bruno Lima', 'bruno.lima@example.com', true, '2025-01-11 09:30:00+00', 'v1'),
    ('+5511900000003', 'Carla Dias', NULL, true, '2025-01-12 18:45:00+00', 'v1')
ON CONFLICT DO NOTHING;

INSERT INTO chatbot.sessions (session_id, user_id, state, turn_id, user_profile, qualification_score, is_active,
                              expires_at, last_activity_at)
SELECT v.session_id, u.id, v.state, v.turn_id, v.profile::jsonb, v.score, v.active, v.expires::timestamptz,
       v.last::timestamptz
FROM (VALUES
    ('seed-session-0001', '+5511900000001', 'RECOMMENDATION', 2,
     '{"budget": 90000, "body_type": "SUV", "seed": true}', 75.00, true, '2999-01-01 00:00:00+00',
     '2025-01-10 12:05:00+00'),
    ('seed-session-0002', '+5511900000002', 'CLOSED', 1, '{"seed": true}', 20.00, false,
     '2025-01-12 09:30:00+00', '2025-01-11 09:31:00+00')
) AS v (session_id, phone, state, turn_id, profile, score, active, expires, last)
JOIN chatbot.users u ON u.phone_number = v.phone
ON CONFLICT DO NOTHING;

INSERT INTO chatbot.messages (message_id, session_id, role, content, intent, sentiment, confidence, entities,
                              response_time_ms)
SELECT v.message_id, s.id, v.role, v.content, v.intent, v.sentiment, v.confidence, v.entities::jsonb, v.rt
FROM (VALUES
    ('seed-msg-0001', 'seed-session-0001', 'user', 'Oi, quero um SUV até 90 mil', 'search_car', 'positive', 0.93,
     '{"body_type": "SUV", "budget": 90000}', NULL),
    ('seed-msg-0002', 'seed-session-0001', 'assistant', 'Tenho 3 SUVs nessa faixa. Quer ver?', NULL, NULL, NULL,
     '{}', 850),
    ('seed-msg-0003', 'seed-session-0001', 'user', 'Sim, me mostra o primeiro', 'view_car', 'positive', 0.88,
     '{}', NULL),
    ('seed-msg-0004', 'seed-session-0002', 'user', 'Só estou olhando, obrigado', 'goodbye', 'neutral', 0.81,
     '{}', NULL)
) AS v (message_id, session, role, content, intent, sentiment, confidence, entities, rt)
JOIN chatbot.sessions s ON s.session_id = v.session
ON CONFLICT DO NOTHING;

INSERT INTO chatbot.qualified_leads (user_id, session_id, qualification_score, priority, user_profile,
                                     recommended_cars)
SELECT s.user_id, s.id, 75.00, 'HIGH', s.user_profile, '["seed-car-001", "seed-car-002"]'
FROM chatbot.sessions s
WHERE s.session_id = 'seed-session-0001'
  AND NOT EXISTS (SELECT 1 FROM chatbot.qualified_leads l WHERE l.session_id = s.id);
