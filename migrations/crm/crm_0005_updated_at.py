"""crm: updated_at on order_line, contact_event, reco_item, audit_item and outcome_event, added online (issue 14).

Seed 000 asks for created_at/updated_at on every operational table; these five had created_at only. The tables
hold data, so the change takes several steps, each its own short transaction: not transactional. The column
(sql/crm/170_updated_at_columns.sql), existing rows filled with their created_at in batches (180-220, `-- batch:`),
the triggers (230), NOT NULL proven by a CHECK added NOT VALID and then validated (240), SET NOT NULL without a
scan and the CHECK dropped (250). Every step checks the catalog and is skipped when done, so a run stopped
anywhere is completed by the next `dbtool migrate` (which, not being recorded yet, runs every file again), and
`migrate --lock-retries N` resumes it after a lock_timeout.

Rollback drops the triggers, the CHECKs (if a run stopped between 240 and 250) and the columns: updated_at of
these tables is lost. It cannot be tried first in a transaction, so `dbtool rollback` asks before it runs (or
takes --yes).
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"crm_0004_product_is_active_idx"}
__transactional__ = False

TABLES = ("order_line", "contact_event", "reco_item", "audit_item", "outcome_event")

ROLLBACK = "\n".join(
    f"DROP TRIGGER IF EXISTS {t}_set_updated_at ON crm.{t};\n"
    f"ALTER TABLE crm.{t} DROP CONSTRAINT IF EXISTS {t}_updated_at_not_null, DROP COLUMN IF EXISTS updated_at;"
    for t in TABLES)

step(
    apply_files(__file__, "170_updated_at_columns.sql", "180_order_line_updated_at_backfill.sql",
                "190_contact_event_updated_at_backfill.sql", "200_reco_item_updated_at_backfill.sql",
                "210_audit_item_updated_at_backfill.sql", "220_outcome_event_updated_at_backfill.sql",
                "230_updated_at_triggers.sql", "240_updated_at_not_null_checks.sql", "250_updated_at_not_null.sql"),
    rollback_sql(__file__, ROLLBACK),
)
