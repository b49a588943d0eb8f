ALTER TABLE crm.customer ADD COLUMN IF NOT EXISTS tier text DEFAULT 'standard';
