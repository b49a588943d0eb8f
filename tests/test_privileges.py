"""Issue 11: the schema says who may do what (sql/<module>/NNN_privileges.sql, migration <module>_0002).

Per module a read-write and a read-only NOLOGIN group role; PUBLIC reaches nothing in a module
schema. Tables come from the committed snapshot of sql/ (checked against the live catalog),
sequences and functions from the live catalog: none is listed here, so what is added later is covered.
Roles are cluster-global: every role a test makes has a unique name and is dropped afterwards.
"""

from __future__ import annotations

import subprocess
import uuid

import psycopg
import pytest
from psycopg import sql

from dbtool import migrate as migrate_lib
from dbtool.catalog import expected
from dbtool.config import Target
from dbtool.paths import ROOT, modules

MODULES = modules()
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
GRANTED = {  # who: (schema, tables, sequences)
    "rw": ({"USAGE"}, {"SELECT", "INSERT", "UPDATE", "DELETE"}, {"USAGE", "SELECT"}),
    "ro": ({"USAGE"}, {"SELECT"}, {"SELECT"}),
    "public": (set(), set(), set()),
}
# Personal data (chatbot: LGPD; crm: customers' names and e-mail addresses).
PERSONAL = ("chatbot.users", "chatbot.messages", "crm.customer")


def grantees(module: str) -> dict[str, str]:
    return {"rw": f"{module}_rw", "ro": f"{module}_ro", "public": "public"}


def snapshot_tables(module: str) -> set[str]:
    """The module's tables (plain and partitioned) as the committed snapshot of sql/ lists them."""
    return {t.key for t in expected.load_snapshot(module).tables() if t.relkind in ("table", "partitioned table")}


def live(conn: psycopg.Connection, module: str, relkinds: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = ANY(%s)", (module, list(relkinds))).fetchall()}


def routines(conn: psycopg.Connection, module: str) -> dict[str, bool]:
    """{signature: is a trigger function} of every function and procedure in the schema."""
    return dict(conn.execute(
        "SELECT p.oid::regprocedure::text, p.prorettype = 'trigger'::regtype FROM pg_proc p "
        "WHERE p.pronamespace = %s::regnamespace", (module,)).fetchall())


def privileges(conn: psycopg.Connection, check: str, who: str, obj: str, candidates) -> set[str]:
    fn = sql.Identifier(check)
    return {p for p in candidates
            if conn.execute(sql.SQL("SELECT {}(%s, %s, %s)").format(fn), (who, obj, p)).fetchone()[0]}


def acl_state(conn: psycopg.Connection) -> list[tuple]:
    """Every ACL in the module schemas, the default privileges, and the module roles' attributes."""
    return conn.execute("""
        SELECT 'schema', n.nspname, n.nspacl::text FROM pg_namespace n WHERE n.nspname = ANY(%(m)s)
        UNION ALL
        SELECT 'relation', c.oid::regclass::text, c.relacl::text
        FROM pg_class c WHERE c.relnamespace::regnamespace::text = ANY(%(m)s)
        UNION ALL
        SELECT 'column', a.attrelid::regclass::text || '.' || a.attname, a.attacl::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace::regnamespace::text = ANY(%(m)s) AND a.attnum > 0 AND a.attacl IS NOT NULL
        UNION ALL
        SELECT 'routine', p.oid::regprocedure::text, p.proacl::text
        FROM pg_proc p WHERE p.pronamespace::regnamespace::text = ANY(%(m)s)
        UNION ALL
        SELECT 'default', d.defaclnamespace::regnamespace::text || ':' || d.defaclobjtype::text, d.defaclacl::text
        FROM pg_default_acl d WHERE d.defaclnamespace::regnamespace::text = ANY(%(m)s)
        UNION ALL
        SELECT 'role', r.rolname, concat_ws(',', r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole,
                                            r.rolcreatedb, r.rolreplication, r.rolbypassrls)
        FROM pg_roles r WHERE r.rolname = ANY(%(r)s)
        ORDER BY 1, 2""", {"m": MODULES, "r": [g for m in MODULES for g in (f"{m}_rw", f"{m}_ro")]}).fetchall()


@pytest.fixture
def login_role(db_url):
    """make(member_of) -> URL of this test's database as a new LOGIN role; dropped afterwards."""
    made = []

    def make(*member_of: str) -> str:
        name = f"app_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            made.append(name)
            for group in member_of:  # the README's statement: GRANT <module>_rw TO app_login
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name)))
        return db_url.replace("postgresql://postgres@", f"postgresql://{name}@", 1)

    yield make
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_every_module_has_a_privileges_migration_after_its_first():
    for module in MODULES:
        by_id = {m.id: m for m in migrate_lib.load([module])}
        privileges_migration = by_id[f"{module}_0002_privileges"]
        assert {d.id for d in privileges_migration.depends} == {f"{module}_0001_initial"}
        (step,) = migrate_lib.file_steps(privileges_migration)
        (name,) = step.files
        assert name.endswith("_privileges.sql")
        initial = [p.name for p in migrate_lib.files_of(by_id[f"{module}_0001_initial"])]
        assert name > max(initial)


def test_module_roles_exist_as_nologin_group_roles(db_url):
    with psycopg.connect(db_url) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = ANY(%s)", ([f"{m}_{k}" for m in MODULES for k in ("rw", "ro")],)
        ).fetchall()}
    assert sorted(rows) == sorted(f"{m}_{k}" for m in MODULES for k in ("rw", "ro"))
    assert all(attrs == (False,) * 6 for attrs in rows.values()), rows


@pytest.mark.parametrize("module", MODULES)
def test_snapshot_lists_the_live_tables(module, db_url):
    with psycopg.connect(db_url) as conn:
        assert snapshot_tables(module) == live(conn, module, "rp") != set()


@pytest.mark.parametrize("module", MODULES)
def test_schema_table_and_sequence_privileges(module, db_url):
    who = grantees(module)
    with psycopg.connect(db_url) as conn:
        sequences = live(conn, module, "S")  # identity columns' included
        for key, role in who.items():
            schema_privs, table_privs, sequence_privs = GRANTED[key]
            assert privileges(conn, "has_schema_privilege", role, module, ("USAGE", "CREATE")) == schema_privs
            for table in sorted(snapshot_tables(module)):
                got = privileges(conn, "has_table_privilege", role, table, TABLE_PRIVILEGES)
                assert got == table_privs, (role, table)
            for seq in sorted(sequences):
                got = privileges(conn, "has_sequence_privilege", role, seq, SEQUENCE_PRIVILEGES)
                assert got == sequence_privs, (role, seq)


@pytest.mark.parametrize("module", MODULES)
def test_function_privileges(module, db_url):
    """Trigger functions: nobody (they fire whatever the user's privileges); others: rw only, never PUBLIC."""
    who = grantees(module)
    with psycopg.connect(db_url) as conn:
        found = routines(conn, module)
        assert found, f"no function in {module}"
        for signature, is_trigger in found.items():
            for key, role in who.items():
                can = privileges(conn, "has_function_privilege", role, signature, ("EXECUTE",)) == {"EXECUTE"}
                assert can == (key == "rw" and not is_trigger), (role, signature)


@pytest.mark.parametrize("module", MODULES)
def test_tables_the_migrating_role_creates_later_get_the_same_grants(module, db_url):
    who = grantees(module)
    with psycopg.connect(db_url) as conn:  # as the role that ran the migrations
        table = f"{module}.later_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE TABLE {table} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
        for key, role in who.items():
            _schema, table_privs, sequence_privs = GRANTED[key]
            assert privileges(conn, "has_table_privilege", role, table, TABLE_PRIVILEGES) == table_privs
            assert privileges(conn, "has_sequence_privilege", role, seq, SEQUENCE_PRIVILEGES) == sequence_privs
        conn.rollback()


def test_public_reads_no_personal_data(db_url, login_role):
    with psycopg.connect(db_url) as conn:
        for table in PERSONAL:
            assert not privileges(conn, "has_table_privilege", "public", table, TABLE_PRIVILEGES)
            columns = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,)).fetchall()]
            assert columns and not any(conn.execute("SELECT has_column_privilege('public', %s, %s, 'SELECT')",
                                                    (table, c)).fetchone()[0] for c in columns), table
    nobody = login_role()  # a login role in no module role: what PUBLIC may do, it may do
    with psycopg.connect(nobody, autocommit=True) as conn:
        for table in PERSONAL:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema"):
                conn.execute(f"SELECT * FROM {table}")


def test_application_roles_get_their_rights_by_membership(db_url, login_role):
    code = f"PRIV-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(login_role("crm_rw")) as app:
        app.execute("INSERT INTO crm.customer (customer_code, email, updated_at) "
                    "VALUES (%s, 'privileges@example.org', '2000-01-01')", (code,))
        event = app.execute("INSERT INTO crm.contact_event (customer_code, contact_date, channel) "
                            "VALUES (%s, current_date, 'EMAIL') RETURNING id", (code,)).fetchone()[0]
        assert event is not None  # an identity column's sequence
        app.commit()
        # The BEFORE UPDATE trigger runs crm.set_updated_at(), on which this role has no EXECUTE.
        app.execute("UPDATE crm.customer SET is_optout = true WHERE customer_code = %s", (code,))
        updated = app.execute("SELECT updated_at > '2001-01-01' FROM crm.customer WHERE customer_code = %s",
                              (code,)).fetchone()[0]
        assert updated
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT crm.set_updated_at()")
        app.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table"):
            app.execute("TRUNCATE crm.customer")
        app.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema"):
            app.execute("SELECT * FROM chatbot.users")  # crm_rw is about crm only
        app.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema"):
            app.execute("CREATE TABLE crm.not_yours (id int)")

    with psycopg.connect(login_role("crm_ro")) as reader:
        assert reader.execute("SELECT email FROM crm.customer WHERE customer_code = %s",
                              (code,)).fetchone() == ("privileges@example.org",)
        for statement in ("INSERT INTO crm.customer (customer_code) VALUES ('PRIV-ro')",
                          "UPDATE crm.customer SET is_optout = false",
                          "DELETE FROM crm.customer",
                          "SELECT nextval('crm.contact_event_id_seq')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(statement)
            reader.rollback()


def privileges_files() -> list:
    return [p for m in MODULES for mig in migrate_lib.load([m]) if mig.id == f"{m}_0002_privileges"
            for step in migrate_lib.file_steps(mig) for p in step.paths]


def test_privileges_files_run_twice_under_psql_change_nothing(db_url):
    files = privileges_files()
    assert len(files) == len(MODULES)
    with psycopg.connect(db_url) as conn:
        migrated = acl_state(conn)
    for _ in range(2):
        for path in files:
            out = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), db_url],
                                 capture_output=True, text=True, cwd=ROOT)
            assert out.returncode == 0, out.stderr
        with psycopg.connect(db_url) as conn:
            assert acl_state(conn) == migrated


def test_privileges_file_repairs_drift(db_url):
    """Run again, the file converges: a GRANT to PUBLIC, or an extra grant to a module role, is undone."""
    with psycopg.connect(db_url) as conn:
        migrated = acl_state(conn)
        conn.execute("GRANT USAGE ON SCHEMA chatbot TO PUBLIC")
        conn.execute("GRANT SELECT ON chatbot.users TO PUBLIC")
        conn.execute("GRANT SELECT (content) ON chatbot.messages TO PUBLIC")
        conn.execute("GRANT TRUNCATE ON chatbot.messages TO chatbot_rw")
        conn.execute("GRANT EXECUTE ON FUNCTION chatbot.set_updated_at() TO PUBLIC")
        conn.commit()
        assert acl_state(conn) != migrated
    (path,) = [p for p in privileges_files() if p.parent.name == "chatbot"]
    out = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), db_url],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    with psycopg.connect(db_url) as conn:
        assert acl_state(conn) == migrated


def roll_back_after_privileges(target: Target) -> None:
    """Undo the migrations applied after each module's <module>_0002_privileges (newest first)."""
    for module in MODULES:
        later = [s.id for s in migrate_lib.status(target, [module]) if s.applied and s.id > f"{module}_0002_privileges"]
        for _ in later:
            migrate_lib.rollback(target, [module], say=lambda _m: None)


def test_rollback_of_the_privileges_migration_removes_the_grants_and_keeps_the_roles(db_url):
    target = Target(db_url, "test")
    with psycopg.connect(db_url) as conn:
        migrated = acl_state(conn)
    roll_back_after_privileges(target)
    done = migrate_lib.rollback(target, MODULES, say=lambda _m: None)
    assert sorted(done.applied) == sorted(f"{m}_0002_privileges" for m in MODULES)

    with psycopg.connect(db_url) as conn:
        for module in MODULES:
            for key, role in grantees(module).items():
                if key == "public":
                    continue
                assert not privileges(conn, "has_schema_privilege", role, module, ("USAGE", "CREATE"))
                for table in live(conn, module, "rp"):  # what later migrations made is gone with them
                    assert not privileges(conn, "has_table_privilege", role, table, TABLE_PRIVILEGES), table
                for seq in live(conn, module, "S"):
                    assert not privileges(conn, "has_sequence_privilege", role, seq, SEQUENCE_PRIVILEGES), seq
            for signature in routines(conn, module):  # PostgreSQL's default again, as before the migration
                assert privileges(conn, "has_function_privilege", "public", signature, ("EXECUTE",))
        assert conn.execute("SELECT count(*) FROM pg_default_acl WHERE defaclnamespace::regnamespace::text "
                            "= ANY(%s)", (MODULES,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dbtool.applied_file WHERE migration_id LIKE '%%_0002_privileges'"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
                            ([f"{m}_{k}" for m in MODULES for k in ("rw", "ro")],)).fetchone()[0] == 2 * len(MODULES)

    again = migrate_lib.migrate(target, MODULES, say=lambda _m: None)
    assert {f"{m}_0002_privileges" for m in MODULES} <= set(again.applied)
    with psycopg.connect(db_url) as conn:
        assert acl_state(conn) == migrated
