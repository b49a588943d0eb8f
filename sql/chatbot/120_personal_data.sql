-- Spec: 004_2e599804ad6cdf94.txt, "LGPD Compliance: Consent tracking, data retention" and "Encryption Ready:
-- Fields prepared for encryption". Design: issue 13, item 8.
-- Marks the columns that hold personal data (what a person is, said or is recognised by): their comment ends
-- with the tag [personal data]. Code reads the tag from the committed catalog snapshot: user erasure
-- (dbtool.repo.chatbot.users.erase) and the retention purge (`dbtool jobs purge`) derive the tables they
-- delete from from these tags and the foreign keys, and refuse a tagged table no foreign key leads to;
-- docs/SCHEMA.md shows the tag. These are the columns to encrypt first.
-- Not tagged: keys (session_id, message_id, car_id: opaque identifiers), NLP labels (intent, sentiment),
-- human_handoffs.reason (the bot's reason) and assigned_to (the agent handling it, a staff identifier).
-- COMMENT ON replaces the whole comment, so each statement restates the column's comment with the tag:
-- idempotent. Comments are compared by validate as info only. Rollback (chatbot_0003_personal_data) puts the
-- previous comments back.
COMMENT ON COLUMN chatbot.users.phone_number IS
    'WhatsApp number in E.164 form, e.g. +5511999999999; identifies the user. [personal data]';
COMMENT ON COLUMN chatbot.users.name IS 'Name the user gave, or their WhatsApp profile name. [personal data]';
COMMENT ON COLUMN chatbot.users.email IS 'E-mail address the user gave; NULL when unknown. [personal data]';
COMMENT ON COLUMN chatbot.sessions.user_profile IS
    'What the bot learned: budget, preferred brands, body type, usage, city... [personal data]';
COMMENT ON COLUMN chatbot.messages.content IS
    'Message text as sent or received (a caption or transcript for media). [personal data]';
COMMENT ON COLUMN chatbot.messages.entities IS
    'Entities the NLP service extracted (brand, model, budget, year...). [personal data]';
COMMENT ON COLUMN chatbot.qualified_leads.user_profile IS
    'Snapshot of the session''s user profile at qualification. [personal data]';
COMMENT ON COLUMN chatbot.car_interactions.feedback IS 'What the user said about the car, if anything. [personal data]';
COMMENT ON COLUMN chatbot.human_handoffs.context IS
    'What the human needs: profile, summary, last messages. [personal data]';
COMMENT ON COLUMN chatbot.human_handoffs.feedback IS
    'Free-text feedback of the customer on the human agent, after resolution. [personal data]';
