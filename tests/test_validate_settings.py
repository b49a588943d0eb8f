"""`dbtool validate` does not depend on how the session prints things.

The catalog reader pins the output settings pg_dump pins (dbtool/catalog/read.py, PINNED). A migrated
database must therefore validate clean (exit 0, no finding of severity error or warning) whatever
IntervalStyle, DateStyle, TimeZone, extra_float_digits, quote_all_identifiers or search_path say,
and wherever they are set: on the database (ALTER DATABASE ... SET), on the role that connects
(ALTER ROLE ... SET), or in the session (PGOPTIONS). A database whose default collation comes from
ICU migrates and validates clean as well.

The checks go through the real CLI (`run_dbtool`), which is what meets these settings, and first make
sure the setting is in force (SHOW in a new session of the same database, role or PGOPTIONS). The
modules' defaults and checks hold no date, time or float constant, so one more test reads a table that
has them all under the odd settings and compares it with the catalog read without them.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from dbtool.catalog.read import read_catalog
from helpers import run_dbtool

# name, value as SET writes it, how SHOW prints it back
SETTINGS = [
    ("IntervalStyle", "iso_8601", "iso_8601"),
    ("DateStyle", "SQL, DMY", "SQL, DMY"),
    ("TimeZone", "Pacific/Chatham", "Pacific/Chatham"),
    ("extra_float_digits", "0", "0"),
    ("quote_all_identifiers", "on", "on"),
]
SEARCH_PATHS = ["crm, public", '"$user", infra, pg_catalog, crm', "planning"]

CASES = [pytest.param([s[:2]], [s], id=f"{s[0]}={s[1]}") for s in SETTINGS] + [
    pytest.param([("search_path", p)], [("search_path", p, p)], id=f"search_path={p}") for p in SEARCH_PATHS
] + [pytest.param([s[:2] for s in SETTINGS] + [("search_path", SEARCH_PATHS[0])],
                  [*SETTINGS, ("search_path", SEARCH_PATHS[0], SEARCH_PATHS[0])], id="all-at-once")]


def validate_clean(url: str, *, env: dict | None = None, args: tuple[str, ...] = ()) -> dict:
    out = run_dbtool("validate", "--database-url", url, "--format", "json", *args, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    loud = [f["message"] for f in report["findings"] if f["severity"] in ("error", "warning")]
    assert loud == [] and out.returncode == 0, (out.returncode, loud, out.stderr)
    return report


def shown(url: str, names: list[str], **connect) -> dict[str, str]:
    """The settings as a new session of `url` sees them (the check that the test set what it meant to)."""
    with psycopg.connect(url, **connect) as conn:
        return {n: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n.lower()))).fetchone()[0] for n in names}


def set_value(name: str, value: str) -> sql.Composable:
    """The value of ALTER ... SET: search_path is a list (one literal per schema), the others one literal."""
    if name == "search_path":
        return sql.SQL(", ").join(sql.Literal(part.strip().strip('"')) for part in value.split(","))
    return sql.Literal(value)


def with_user(url: str, user: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{user}@", 1)


def pgoptions(pairs) -> str:
    """PGOPTIONS for `-c name=value` pairs: libpq splits on spaces, so the spaces of a value are escaped."""
    return " ".join(f"-c {name}={value.replace(' ', chr(92) + ' ')}" for name, value in pairs)


@pytest.fixture
def login_role(db_url):
    """A LOGIN SUPERUSER role of this test only (roles are cluster-global: dropped afterwards)."""
    name = f"settings_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.mark.parametrize("pairs,show", CASES)
def test_clean_with_settings_on_the_database(db_url, pairs, show):
    dbname = conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name, value in pairs:
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(dbname), sql.Identifier(name.lower()), set_value(name, value)))
    assert shown(db_url, [s[0] for s in show]) == {n: v for n, _, v in show}
    validate_clean(db_url)


@pytest.mark.parametrize("pairs,show", CASES)
def test_clean_with_settings_on_the_role(db_url, login_role, pairs, show):
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name, value in pairs:
            conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(
                sql.Identifier(login_role), sql.Identifier(name.lower()), set_value(name, value)))
    url = with_user(db_url, login_role)
    assert shown(url, [s[0] for s in show]) == {n: v for n, _, v in show}
    validate_clean(url)


@pytest.mark.parametrize("pairs,show", CASES)
def test_clean_with_settings_in_the_session(db_url, pairs, show):
    options = pgoptions(pairs)
    assert shown(db_url, [s[0] for s in show], options=options) == {n: v for n, _, v in show}
    validate_clean(db_url, env={"PGOPTIONS": options})


# The modules' own defaults and checks hold no date, time or float constant: this table has them all.
CONSTANTS = """CREATE TABLE planning.constants (
    d date NOT NULL DEFAULT '2024-03-01',
    ts timestamptz NOT NULL DEFAULT '2024-03-01 12:34:56+00',
    t timestamp DEFAULT '2024-03-01 12:34:56',
    iv interval NOT NULL DEFAULT '1 day 02:03:04',
    f float8 NOT NULL DEFAULT '0.3333333333333333'::float8,
    r real DEFAULT '0.1'::real,
    CONSTRAINT constants_check CHECK (ts > '2000-01-01 00:00:00+00' AND d > '2000-01-01' AND iv < '1 year'
                                      AND f < '0.6666666666666666'::float8))"""


@pytest.mark.parametrize("scope", ["database", "role", "session"])
def test_constants_print_the_same_whatever_the_settings(db_url, login_role, scope):
    """The reader prints date, timestamp, interval and float constants the same under every odd setting."""
    everything = [s[:2] for s in SETTINGS] + [("search_path", SEARCH_PATHS[0])]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(CONSTANTS)
        plain = read_catalog(conn, ["planning"])
        assert any("'1 day 02:03:04'::interval" == c.default for c in plain.columns("planning", "constants"))
        target = {"database": sql.SQL("DATABASE {}").format(sql.Identifier(conninfo_to_dict(db_url)["dbname"])),
                  "role": sql.SQL("ROLE {}").format(sql.Identifier(login_role))}.get(scope)
        for name, value in everything if target else ():
            conn.execute(sql.SQL("ALTER {} SET {} = {}").format(target, sql.Identifier(name.lower()),
                                                                 set_value(name, value)))
    url = with_user(db_url, login_role) if scope == "role" else db_url
    connect = {"options": pgoptions(everything)} if scope == "session" else {}
    assert shown(url, ["IntervalStyle", "TimeZone"], **connect) == {"IntervalStyle": "iso_8601",
                                                                    "TimeZone": "Pacific/Chatham"}
    with psycopg.connect(url, **connect) as conn:
        assert read_catalog(conn, ["planning"]) == plain


def test_expectation_built_under_odd_session_settings_is_the_snapshot(db_url):
    """--from-sql applies sql/ to a scratch database in a session with every odd setting: same catalog."""
    options = pgoptions([s[:2] for s in SETTINGS] + [("search_path", SEARCH_PATHS[0])])
    validate_clean(db_url, env={"PGOPTIONS": options}, args=("--from-sql", "--strict"))


def test_migrated_under_odd_session_settings_validates_clean(empty_url):
    """The DDL applied in a session with every odd setting makes the catalog the snapshot expects."""
    options = pgoptions([s[:2] for s in SETTINGS] + [("search_path", SEARCH_PATHS[0])])
    out = run_dbtool("migrate", "--database-url", empty_url, env={"PGOPTIONS": options})
    assert out.returncode == 0, out.stderr
    report = validate_clean(empty_url, args=("--strict",))
    assert report["findings"] == []


@pytest.fixture
def icu_url(pg_cluster):
    """A new database whose default collation is ICU's en-US; skipped when the server has no ICU."""
    admin = pg_cluster.conninfo("postgres")
    name = f"icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i')").fetchone()[0]:
            pytest.skip("this PostgreSQL server was built without ICU")
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
                     .format(sql.Identifier(name)))
    try:
        yield pg_cluster.conninfo(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_icu_database_migrates_and_validates_clean(icu_url):
    with psycopg.connect(icu_url) as conn:
        provider, locale = conn.execute("SELECT datlocprovider, daticulocale FROM pg_database "
                                        "WHERE datname = current_database()").fetchone()
    assert (provider, locale) == ("i", "en-US")
    out = run_dbtool("migrate", "--database-url", icu_url)
    assert out.returncode == 0, out.stderr
    report = validate_clean(icu_url, args=("--strict",))
    assert report["findings"] == []
