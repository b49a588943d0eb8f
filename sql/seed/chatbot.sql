-- Demo rows of the chatbot module (spec 004: 3 users with consent, 2 sessions in different states,
-- 4 messages, 1 qualified lead). Idempotent: users keyed by phone_number, sessions by session_id,
-- messages by message_id, the lead by its session; identity ids are never given (no setval needed).
-- Each row the seed inserts is recorded in dbtool.seeded_row (_seed_functions.sql), in the same
-- transaction, so that chatbot.clear.sql removes only those rows, and only while they hold these values.
--   psql -X -1 -v ON_ERROR_STOP=1 -f sql/seed/chatbot.sql "$DATABASE_URL"

\ir _seed_functions.sql

DO $seed$ BEGIN
PERFORM pg_temp.dbtool_seed('chatbot.users', to_jsonb(v)) FROM (VALUES
    ('+5511900000001', 'Ana Souza', 'ana.souza@example.com', true, '2025-01-10 12:00:00+00', 'v1'),
    ('+5511900000002', 'Bruno Lima', 'bruno.lima@example.com', true, '2025-01-11 09:30:00+00', 'v1'),
    ('+5511900000003', 'Carla Dias', NULL, true, '2025-01-12 18:45:00+00', 'v1')
) AS v (phone_number, name, email, consent, consent_at, consent_version);

PERFORM pg_temp.dbtool_seed('chatbot.sessions', to_jsonb(x)) FROM (
    SELECT v.session_id, u.id AS user_id, v.state, v.turn_id, v.user_profile::jsonb AS user_profile,
           v.qualification_score, v.is_active, v.expires_at, v.last_activity_at
    FROM (VALUES
        ('seed-session-0001', '+5511900000001', 'RECOMMENDATION', 2,
         '{"budget": 90000, "body_type": "SUV", "seed": true}', 75.00, true, '2999-01-01 00:00:00+00',
         '2025-01-10 12:05:00+00'),
        ('seed-session-0002', '+5511900000002', 'CLOSED', 1, '{"seed": true}', 20.00, false,
         '2025-01-12 09:30:00+00', '2025-01-11 09:31:00+00')
    ) AS v (session_id, phone, state, turn_id, user_profile, qualification_score, is_active, expires_at,
            last_activity_at)
    JOIN chatbot.users u ON u.phone_number = v.phone
) AS x;

PERFORM pg_temp.dbtool_seed('chatbot.messages', to_jsonb(x)) FROM (
    SELECT v.message_id, s.id AS session_id, v.role, v.content, v.intent, v.sentiment, v.confidence,
           v.entities::jsonb AS entities, v.response_time_ms
    FROM (VALUES
        ('seed-msg-0001', 'seed-session-0001', 'user', 'Oi, quero um SUV até 90 mil', 'search_car', 'positive', 0.93,
         '{"body_type": "SUV", "budget": 90000}', NULL),
        ('seed-msg-0002', 'seed-session-0001', 'assistant', 'Tenho 3 SUVs nessa faixa. Quer ver?', NULL, NULL, NULL,
         '{}', 850),
        ('seed-msg-0003', 'seed-session-0001', 'user', 'Sim, me mostra o primeiro', 'view_car', 'positive', 0.88,
         '{}', NULL),
        ('seed-msg-0004', 'seed-session-0002', 'user', 'Só estou olhando, obrigado', 'goodbye', 'neutral', 0.81,
         '{}', NULL)
    ) AS v (message_id, session, role, content, intent, sentiment, confidence, entities, response_time_ms)
    JOIN chatbot.sessions s ON s.session_id = v.session
) AS x;

-- One lead per seed session: "there" when a lead of that session exists (it has no natural key).
PERFORM pg_temp.dbtool_seed('chatbot.qualified_leads', to_jsonb(x), ARRAY['session_id']) FROM (
    SELECT s.user_id, s.id AS session_id, 75.00 AS qualification_score, 'HIGH' AS priority, s.user_profile,
           '["seed-car-001", "seed-car-002"]'::jsonb AS recommended_cars
    FROM chatbot.sessions s
    WHERE s.session_id = 'seed-session-0001'
) AS x;
END $seed$;
