"""crm: the [personal data] tag on the columns that hold personal data (sql/crm/150_personal_data.sql).

Rollback puts the comments back as they were before the tag.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"crm_0002_privileges"}

_BEFORE = """
COMMENT ON COLUMN crm.customer.email IS 'Contact email; NULL when unknown.';
COMMENT ON COLUMN crm.customer.first_name IS NULL;
COMMENT ON COLUMN crm.customer.last_name IS NULL;
"""

step(apply_files(__file__, "150_personal_data.sql"), rollback_sql(__file__, _BEFORE))
