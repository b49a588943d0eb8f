"""crm: module roles crm_rw / crm_ro and their privileges (sql/crm/140_privileges.sql).

Rollback revokes what the file granted (schema, tables, sequences, functions, default privileges)
and gives PUBLIC back PostgreSQL's default EXECUTE on the module's functions, as before. It leaves
the roles crm_rw and crm_ro: roles belong to the whole cluster, other databases on it (other
environments, test and scratch databases) hold grants to them, and DROP ROLE would then fail
("role ... cannot be dropped because some objects depend on it") and abort the rollback.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, module_privileges_rollback, rollback_sql

__depends__ = {"crm_0001_initial"}

step(apply_files(__file__, "140_privileges.sql"), rollback_sql(__file__, module_privileges_rollback("crm")))
