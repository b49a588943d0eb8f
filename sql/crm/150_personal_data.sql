-- Spec: 001_705d406738b030a2.txt (Customer Table: email), 000_b948dd2ae880f0f9.txt (customer master).
-- Design: issue 13, item 8 (the chatbot seed's "fields prepared for encryption", applied to crm too).
-- Marks the columns that hold personal data: their comment ends with the tag [personal data], which
-- docs/SCHEMA.md shows and code reads from the committed catalog snapshot
-- (dbtool.repo.chatbot.personal_data). These are the columns to encrypt first.
-- Not tagged: customer_code (the source system's opaque identifier), purchases and profiles (facts about a
-- customer_code, deleted with the customer by their ON DELETE CASCADE foreign keys).
-- COMMENT ON replaces the whole comment, so each statement restates the column's comment with the tag:
-- idempotent. Comments are compared by validate as info only. Rollback (crm_0003_personal_data) puts the
-- previous comments back.
COMMENT ON COLUMN crm.customer.email IS 'Contact email; NULL when unknown. [personal data]';
COMMENT ON COLUMN crm.customer.first_name IS
    'First name, for personalised messages and for humans reviewing recommendations. [personal data]';
COMMENT ON COLUMN crm.customer.last_name IS 'Last name. [personal data]';
