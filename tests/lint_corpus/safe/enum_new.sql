CREATE TYPE crm.card_level AS ENUM ('SILVER', 'GOLD');
ALTER TYPE crm.card_level ADD VALUE 'PLATINUM';
