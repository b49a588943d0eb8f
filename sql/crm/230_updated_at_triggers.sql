-- Issue 14, part 3: the BEFORE UPDATE triggers that keep updated_at current (crm.set_updated_at(), as on the
-- other crm tables), created after the backfills (180-220), whose UPDATEs they would otherwise stamp with now().
-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE on its table (writes wait, reads go on) for a catalog update only;
-- a trigger already there is left as it is, without taking that lock.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = 'crm.order_line'::regclass
                   AND tgname = 'order_line_set_updated_at') THEN
        CREATE TRIGGER order_line_set_updated_at BEFORE UPDATE ON crm.order_line
            FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = 'crm.contact_event'::regclass
                   AND tgname = 'contact_event_set_updated_at') THEN
        CREATE TRIGGER contact_event_set_updated_at BEFORE UPDATE ON crm.contact_event
            FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = 'crm.reco_item'::regclass
                   AND tgname = 'reco_item_set_updated_at') THEN
        CREATE TRIGGER reco_item_set_updated_at BEFORE UPDATE ON crm.reco_item
            FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = 'crm.audit_item'::regclass
                   AND tgname = 'audit_item_set_updated_at') THEN
        CREATE TRIGGER audit_item_set_updated_at BEFORE UPDATE ON crm.audit_item
            FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = 'crm.outcome_event'::regclass
                   AND tgname = 'outcome_event_set_updated_at') THEN
        CREATE TRIGGER outcome_event_set_updated_at BEFORE UPDATE ON crm.outcome_event
            FOR EACH ROW EXECUTE FUNCTION crm.set_updated_at();
    END IF;
END $$;
