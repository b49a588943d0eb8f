"""crm: index crm.product (is_active, product_key), built online (sql/crm/160_product_is_active_idx.sql).

Lists active (or deactivated) products a page at a time (dbtool.repo.crm.product.list_active). Not
transactional: CREATE INDEX CONCURRENTLY cannot run in a transaction. A failed build leaves an INVALID
index, which validate reports and the next migrate drops and builds again.

Rollback drops the index, CONCURRENTLY too (no lock that blocks reads or writes of crm.product). It cannot
be tried first in a transaction, so `dbtool rollback` asks before it runs (or takes --yes).
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"crm_0003_personal_data"}
__transactional__ = False

step(
    apply_files(__file__, "160_product_is_active_idx.sql"),
    rollback_sql(__file__, "DROP INDEX CONCURRENTLY IF EXISTS crm.product_is_active_product_key_idx"),
)
