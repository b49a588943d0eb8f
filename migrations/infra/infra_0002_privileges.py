"""infra: module roles infra_rw / infra_ro and their privileges (sql/infra/100_privileges.sql).

Rollback revokes what the file granted (schema, tables, sequences, functions, default privileges)
and gives PUBLIC back PostgreSQL's default EXECUTE on the module's functions, as before. It leaves
the roles infra_rw and infra_ro: roles belong to the whole cluster, other databases on it (other
environments, test and scratch databases) hold grants to them, and DROP ROLE would then fail
("role ... cannot be dropped because some objects depend on it") and abort the rollback.
"""

from yoyo import step

from dbtool.migration_steps import apply_files, rollback_sql

__depends__ = {"infra_0001_initial"}

ROLLBACK = """
REVOKE ALL ON ALL TABLES IN SCHEMA infra FROM infra_rw, infra_ro;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA infra FROM infra_rw, infra_ro;
REVOKE ALL ON ALL ROUTINES IN SCHEMA infra FROM infra_rw, infra_ro;
REVOKE ALL ON SCHEMA infra FROM infra_rw, infra_ro;
ALTER DEFAULT PRIVILEGES IN SCHEMA infra REVOKE ALL ON TABLES FROM infra_rw, infra_ro;
ALTER DEFAULT PRIVILEGES IN SCHEMA infra REVOKE ALL ON SEQUENCES FROM infra_rw, infra_ro;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA infra TO PUBLIC;
"""

step(apply_files(__file__, "100_privileges.sql"), rollback_sql(__file__, ROLLBACK))
