-- Spec: 003_5348cd3a2617ad4c.txt (retail planning).
-- Design: issue 11, DESIGN.md "Privileges are part of the schema".
-- Who may do what in planning, stated here so that a GRANT to PUBLIC or a missing REVOKE is drift:
--   planning_rw: USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on every table; USAGE, SELECT on every
--     sequence (identity sequences included: setval, currval, and any serial column);
--   planning_ro: USAGE on the schema; SELECT on every table and sequence (enough to read, or pg_dump, the module);
--   PUBLIC: nothing, not even the schema; its default EXECUTE on functions is revoked.
-- Both roles are NOLOGIN group roles: an environment grants them to its own login roles
-- (GRANT planning_rw TO app_login; README "Roles and privileges").
-- Functions: planning.set_updated_at() is a trigger function; EXECUTE is checked when a trigger is created
-- (by the table owner, who owns it), never when it fires, so no role is granted it. A function that
-- applications call gets GRANT EXECUTE ... TO planning_rw (and REVOKE ... FROM PUBLIC) in its own file.
-- Default privileges: tables and sequences that the migrating role creates in planning later get the same
-- grants. PUBLIC's EXECUTE on new functions cannot be revoked per schema (ALTER DEFAULT PRIVILEGES IN
-- SCHEMA ... REVOKE only undoes a per-schema GRANT), and a database-wide default would also take it from
-- every extension's functions: a file adding a function revokes it itself (tests/test_privileges.py checks).
-- Idempotent and convergent: the roles' grants are revoked and given again in the same transaction, so
-- running this file restores exactly this state.

-- Roles are cluster-global: created only when missing and never altered here (other databases of the
-- cluster use them too). Creating one needs CREATEROLE (or a superuser).
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['planning_rw', 'planning_ro'] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name);
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role % does not exist and % may not create roles: have a role with CREATEROLE run '
                            '"CREATE ROLE % NOLOGIN" first', role_name, current_user, role_name;
        END IF;
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of the cluster
        END;
    END LOOP;
END
$$;

REVOKE ALL ON SCHEMA planning FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA planning FROM PUBLIC, planning_rw, planning_ro;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA planning FROM PUBLIC, planning_rw, planning_ro;
REVOKE ALL ON ALL ROUTINES IN SCHEMA planning FROM planning_rw, planning_ro;
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA planning FROM PUBLIC;  -- functions and procedures

GRANT USAGE ON SCHEMA planning TO planning_rw, planning_ro;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA planning TO planning_rw;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA planning TO planning_rw;
GRANT SELECT ON ALL TABLES IN SCHEMA planning TO planning_ro;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA planning TO planning_ro;

ALTER DEFAULT PRIVILEGES IN SCHEMA planning GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO planning_rw;
ALTER DEFAULT PRIVILEGES IN SCHEMA planning GRANT USAGE, SELECT ON SEQUENCES TO planning_rw;
ALTER DEFAULT PRIVILEGES IN SCHEMA planning GRANT SELECT ON TABLES TO planning_ro;
ALTER DEFAULT PRIVILEGES IN SCHEMA planning GRANT SELECT ON SEQUENCES TO planning_ro;
