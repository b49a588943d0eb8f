"""chatbot: the [personal data] tag on the columns that hold personal data (sql/chatbot/120_personal_data.sql).

Rollback puts the comments back as they were before the tag.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"chatbot_0002_privileges"}

_BEFORE = """
COMMENT ON COLUMN chatbot.users.phone_number IS
    'WhatsApp number in E.164 form, e.g. +5511999999999; identifies the user.';
COMMENT ON COLUMN chatbot.users.name IS NULL;
COMMENT ON COLUMN chatbot.users.email IS NULL;
COMMENT ON COLUMN chatbot.sessions.user_profile IS
    'What the bot learned: budget, preferred brands, body type, usage, city...';
COMMENT ON COLUMN chatbot.messages.content IS 'Message text as sent or received (a caption or transcript for media).';
COMMENT ON COLUMN chatbot.messages.entities IS 'Entities the NLP service extracted (brand, model, budget, year...).';
COMMENT ON COLUMN chatbot.qualified_leads.user_profile IS 'Snapshot of the session''s user profile at qualification.';
COMMENT ON COLUMN chatbot.car_interactions.feedback IS 'What the user said about the car, if anything.';
COMMENT ON COLUMN chatbot.human_handoffs.context IS 'What the human needs: profile, summary, last messages.';
COMMENT ON COLUMN chatbot.human_handoffs.feedback IS
    'Free-text feedback of the customer on the human agent, after resolution.';
"""

step(apply_files(__file__, "120_personal_data.sql"), rollback_sql(__file__, _BEFORE))
