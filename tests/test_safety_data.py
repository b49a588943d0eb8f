"""Issue 12, data safety: seed --clear removes only the seed's rows; rollback and reset say what they drop
(outside the module too), ask, and never undo the wrong migration; an empty database URL is refused."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from dbtool import config
from dbtool import migrate as migrate_lib
from dbtool.errors import UsageError
from dbtool.paths import ROOT, modules
from helpers import add_migration, copy_project, dbtool_env, finish_dbtool, row_counts, run_dbtool, start_dbtool

ALL_TABLES = """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname = ANY(%s) ORDER BY 1, 2"""


def one_line_error(out, code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("dbtool: "), out.stderr
    return line


def counts(url: str, schemas: list[str] | None = None) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return row_counts(conn, conn.execute(ALL_TABLES, (schemas or modules(),)).fetchall())


def one(url: str, query: str, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def psql_file(url: str, path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-q", "-A", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def run_on_a_terminal(*args: str, typed: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI with a pseudo-terminal as stdin (it may ask), `typed` as the answer; stdout, stderr piped."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "dbtool", *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=dbtool_env(), cwd=ROOT)
        os.close(slave)
        slave = -1
        os.write(master, typed.encode() + b"\n")
        return finish_dbtool(proc, timeout=timeout)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


OPERATOR_ROWS = (  # an operator's own rows that happen to use keys the seed uses
    "INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('OPS', 'Operator cluster')",
    "INSERT INTO planning.stores (store_id, store_name, cluster_id, store_size_sqft, location_tier, median_income,"
    " store_format, region, avg_weekly_sales_12mo) VALUES ('S001', 'Our flagship', 'OPS', 1, 'A', 1, 'mall', 'N', 1)",
    "INSERT INTO crm.customer (customer_code, email) VALUES ('CUST_001', 'real.customer@example.org')",
    "INSERT INTO crm.product (product_key, product_label, family_crm) VALUES ('PINOT_NOIR_2022', 'Our pinot', 'Red')",
    "INSERT INTO chatbot.users (phone_number, name) VALUES ('+5511900000001', 'A real user')",
    "INSERT INTO infra.customers (id, name, email, plan, status) VALUES"
    " ('a0000000-0000-4000-8000-000000000001', 'Real Corp', 'it@real.example', 'FREE', 'ACTIVE')",
)
OPERATOR_CHECK = """SELECT (SELECT store_name FROM planning.stores WHERE store_id = 'S001'),
                           (SELECT email FROM crm.customer WHERE customer_code = 'CUST_001'),
                           (SELECT product_label FROM crm.product WHERE product_key = 'PINOT_NOIR_2022'),
                           (SELECT name FROM chatbot.users WHERE phone_number = '+5511900000001'),
                           (SELECT name FROM infra.customers WHERE id = 'a0000000-0000-4000-8000-000000000001')"""
OPERATOR_VALUES = ("Our flagship", "real.customer@example.org", "Our pinot", "A real user", "Real Corp")


# -- 1: seed --clear removes only rows the seed inserted, that still hold the seed's values -------

def test_clear_on_a_database_never_seeded_deletes_nothing(db_url):
    execute(db_url, *OPERATOR_ROWS)
    before = counts(db_url)
    out = run_dbtool("seed", "--clear", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert counts(db_url) == before
    assert one(db_url, OPERATOR_CHECK) == OPERATOR_VALUES
    assert out.stderr.count("no row recorded as inserted by the seed here: nothing removed") == 4, out.stderr
    for module in modules():                                          # psql runs the same clear
        done = psql_file(db_url, ROOT / "sql" / "seed" / f"{module}.clear.sql")
        assert done.returncode == 0, done.stderr
    assert counts(db_url) == before


def test_seed_then_clear_keeps_the_operators_rows_and_rows_changed_since(db_url):
    execute(db_url, *OPERATOR_ROWS)
    before = counts(db_url)
    assert run_dbtool("seed", "--database-url", db_url).returncode == 0
    seeded = counts(db_url)
    assert seeded["planning.stores"] == 2 and seeded["crm.customer"] == 1     # S002 added, S001 left as it was
    assert one(db_url, OPERATOR_CHECK) == OPERATOR_VALUES
    execute(db_url, "UPDATE planning.stores SET region = 'West' WHERE store_id = 'S002'",
            "UPDATE infra.agents SET status = 'DEGRADED' WHERE name = 'cost-agent-1'")

    out = run_dbtool("seed", "--clear", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    lines = {ln.strip().split(":")[0]: ln.strip() for ln in out.stderr.splitlines() if ln.startswith("  ")}
    assert lines["planning.stores"] == ("planning.stores: removed 0, kept 2: 1 changed since seeded, "
                                        "1 not inserted by the seed")
    assert lines["planning.store_clusters"] == ("planning.store_clusters: removed 0, kept 1: "
                                                "1 still referenced by rows that stay")      # S002 uses it
    assert lines["planning.weekly_actuals"] == "planning.weekly_actuals: removed 3, kept 0"  # children first
    assert lines["crm.customer"] == "crm.customer: removed 0, kept 1: 1 not inserted by the seed"
    assert lines["crm.product"] == "crm.product: removed 2, kept 1: 1 not inserted by the seed"
    assert lines["chatbot.users"] == "chatbot.users: removed 2, kept 1: 1 not inserted by the seed"
    assert lines["infra.agents"] == "infra.agents: removed 4, kept 1: 1 changed since seeded"

    left = counts(db_url)
    assert one(db_url, OPERATOR_CHECK) == OPERATOR_VALUES
    extra = {t: left[t] - before[t] for t in left if left[t] != before[t]}
    assert extra == {"planning.stores": 1, "planning.store_clusters": 1, "infra.agents": 1}, extra
    again = run_dbtool("seed", "--clear", "--database-url", db_url)  # nothing more goes: the same rows stay
    assert again.returncode == 0 and counts(db_url) == left


def test_clear_keeps_seed_rows_that_rows_elsewhere_reference_even_through_cascading_keys(db_url):
    assert run_dbtool("seed", "-m", "crm", "--database-url", db_url).returncode == 0
    execute(db_url, "CREATE TABLE public.invoices (id int PRIMARY KEY, customer_code varchar(50)"
                    " REFERENCES crm.customer ON DELETE CASCADE)",
            "INSERT INTO public.invoices VALUES (1, 'CUST_001')")
    out = run_dbtool("seed", "-m", "crm", "--clear", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "crm.customer: removed 0, kept 1: 1 still referenced by rows that stay" in out.stderr
    assert one(db_url, "SELECT count(*) FROM public.invoices") == (1,)     # a cascade never reached it
    assert counts(db_url, ["crm"])["crm.customer"] == 1


def test_psql_clear_removes_the_same_rows_whatever_the_session_settings(db_url):
    odd = {"PGOPTIONS": "-c TimeZone=Asia/Tokyo -c DateStyle=German -c extra_float_digits=-3"
                        " -c IntervalStyle=sql_standard"}
    execute(db_url, OPERATOR_ROWS[0], OPERATOR_ROWS[1])
    for module in modules():
        done = psql_file(db_url, ROOT / "sql" / "seed" / f"{module}.sql", env=odd)
        assert done.returncode == 0, done.stderr
    other = {"PGOPTIONS": "-c TimeZone=America/Sao_Paulo -c DateStyle=SQL,DMY -c extra_float_digits=0"}
    results = {}
    for module in modules():
        done = psql_file(db_url, ROOT / "sql" / "seed" / f"{module}.clear.sql", env=other)
        assert done.returncode == 0, done.stderr
        results.update(ln.split("|", 1) for ln in done.stdout.splitlines() if "|" in ln and not ln.startswith("table"))
    assert results["planning.stores"] == "1|0|1|0"                 # removed S002, kept S001: not the seed's
    assert results["chatbot.messages"] == "4|0|0|0"
    left = counts(db_url)
    assert sum(left.values()) == 2 and left["planning.stores"] == 1, left


def test_clear_waits_for_a_reference_being_added_and_then_keeps_the_row(db_url):
    """A row referencing a seed row, committed while the clear runs, is seen: nothing cascades onto it."""
    assert run_dbtool("seed", "-m", "crm", "--database-url", db_url).returncode == 0
    execute(db_url, "INSERT INTO crm.product (product_key, product_label, family_crm) VALUES ('OURS', 'Ours', 'Red')")
    with psycopg.connect(db_url) as writer:  # a sale to the seed's customer: its key cascades on delete
        writer.execute("INSERT INTO crm.order_line (customer_code, product_key, order_date, amount_ht)"
                       " VALUES ('CUST_001', 'OURS', '2025-01-01', 1)")          # not committed yet
        proc = start_dbtool("seed", "-m", "crm", "--clear", "--database-url", db_url)
        try:
            deadline = time.monotonic() + 60
            with psycopg.connect(db_url, autocommit=True) as watcher:
                while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                          " AND datname = current_database()").fetchone()[0]:
                    assert time.monotonic() < deadline and proc.poll() is None, "the clear never waited"
                    time.sleep(0.05)
            writer.commit()
        finally:
            done = finish_dbtool(proc)
    assert done.returncode == 0, done.stderr
    assert "crm.customer: removed 0, kept 1: 1 still referenced by rows that stay" in done.stderr
    assert one(db_url, "SELECT count(*) FROM crm.order_line WHERE product_key = 'OURS'") == (1,)


# -- 2: rollback never undoes the wrong migration --------------------------------------------

def test_rollback_refuses_when_the_newest_applied_migration_is_missing_from_disk(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0003_extra", {"110_extra.sql": "CREATE TABLE planning.extra (id int);"},
                  rollback="DROP TABLE planning.extra")
    env = {"DBTOOL_ROOT": str(root)}
    assert run_dbtool("migrate", "--database-url", db_url, env=env).returncode == 0
    assert run_dbtool("seed", "-m", "planning", "--database-url", db_url).returncode == 0
    (root / "migrations" / "planning" / "planning_0003_extra.py").unlink()
    before = counts(db_url)
    for args in (("-m", "planning"), ("-m", "planning", "--all", "--yes"), ("--yes",)):
        out = run_dbtool("rollback", *args, "--database-url", db_url, env=env)
        line = one_line_error(out, 1)
        assert "planning_0003_extra" in line and "not on disk" in line and "nothing was rolled back" in line
    assert counts(db_url) == before
    planning = len(migrate_lib.load(["planning"])) + 1  # the project's, and the one added above
    assert one(db_url, "SELECT count(*) FROM _yoyo_migration WHERE migration_id LIKE 'planning%%'") == (planning,)
    other = run_dbtool("rollback", "-m", "crm", "--yes", "--database-url", db_url, env=env)  # other modules are fine
    assert other.returncode == 0 and "rolled back crm_" in other.stderr


def test_rollback_of_a_newer_migration_than_the_missing_one_is_allowed(db_url, tmp_path):
    root = copy_project(tmp_path)
    latest = max(p.stem for p in (root / "migrations" / "planning").glob("planning_*.py"))  # what 0003_a follows
    add_migration(root, "planning", "planning_0003_a", {"110_a.sql": "CREATE TABLE planning.a (id int);"},
                  rollback="DROP TABLE planning.a")
    add_migration(root, "planning", "planning_0004_b", {"120_b.sql": "CREATE TABLE planning.b (id int);"},
                  rollback="DROP TABLE planning.b")
    env = {"DBTOOL_ROOT": str(root)}
    assert run_dbtool("migrate", "--database-url", db_url, env=env).returncode == 0
    text = (root / "migrations" / "planning" / "planning_0004_b.py").read_text()
    (root / "migrations" / "planning" / "planning_0004_b.py").write_text(
        text.replace("'planning_0003_a'", repr(latest)))
    (root / "migrations" / "planning" / "planning_0003_a.py").unlink()
    out = run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url, env=env)
    assert out.returncode == 0 and "rolled back planning_0004_b" in out.stderr, out.stderr
    out = run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url, env=env)
    assert "planning_0003_a" in one_line_error(out, 1)                   # now it is the newest: refused


def test_reset_forgets_the_modules_migrations_missing_from_disk_too(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0003_extra", {"110_extra.sql": "CREATE TABLE planning.extra (id int);"})
    env = {"DBTOOL_ROOT": str(root)}
    assert run_dbtool("migrate", "--database-url", db_url, env=env).returncode == 0
    (root / "migrations" / "planning" / "planning_0003_extra.py").unlink()
    out = run_dbtool("reset", "-m", "planning", "--yes", "--database-url", db_url, env=env)
    planning = len(migrate_lib.load(["planning"])) + 1  # the project's, and the one now missing from disk
    assert out.returncode == 0 and f"{planning} migration record(s) forgotten" in out.stderr, out.stderr
    assert one(db_url, "SELECT count(*) FROM _yoyo_migration WHERE migration_id LIKE 'planning%%'") == (0,)
    others = len(migrate_lib.load([m for m in modules() if m != "planning"]))
    assert one(db_url, "SELECT count(*) FROM _yoyo_migration") == (others,)  # other modules' records stay


# -- 3: what DROP ... CASCADE takes outside the module is named, and refused without --cascade -

PLANNING_DEPENDENTS = (
    "CREATE VIEW public.store_names AS SELECT store_id, store_name FROM planning.stores",
    "CREATE VIEW public.store_names_2 AS SELECT * FROM public.store_names",
    "CREATE TABLE public.orders (id int PRIMARY KEY, store_id varchar(20) REFERENCES planning.stores)",
    "INSERT INTO public.orders VALUES (1, NULL)",
    "CREATE TABLE public.local_stores (note text) INHERITS (planning.stores)",
    "INSERT INTO public.local_stores (store_id, store_name, store_size_sqft, location_tier, median_income,"
    " store_format, region, avg_weekly_sales_12mo) VALUES ('L1', 'Local', 1, 'A', 1, 'mall', 'N', 1)",
    "CREATE TABLE public.audit (id int, updated_at timestamptz)",
    "CREATE TRIGGER audit_touch BEFORE UPDATE ON public.audit FOR EACH ROW EXECUTE FUNCTION planning.set_updated_at()",
    "CREATE FUNCTION public.n_stores() RETURNS bigint LANGUAGE sql"
    " BEGIN ATOMIC SELECT count(*) FROM planning.stores; END",
)
PLANNING_NAMED = ("view public.store_names", "view public.store_names_2",
                  "table constraint orders_store_id_fkey on public.orders", "table public.local_stores (and its rows)",
                  "trigger audit_touch on public.audit", "function public.n_stores()")


def test_reset_names_what_it_would_drop_outside_the_module_and_needs_cascade(db_url):
    execute(db_url, *PLANNING_DEPENDENTS)
    out = run_dbtool("reset", "-m", "planning", "--yes", "--database-url", db_url)
    line = one_line_error(out, 2)
    assert "--cascade" in line and "nothing was dropped" in line
    for name in PLANNING_NAMED:
        assert name in line, (name, line)
    assert one(db_url, "SELECT to_regnamespace('planning') IS NOT NULL, to_regclass('public.store_names') IS NOT NULL,"
                       " (SELECT count(*) FROM public.local_stores)") == (True, True, 1)

    out = run_dbtool("reset", "-m", "planning", "--yes", "--cascade", "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "also dropped 6 object(s) outside it" in out.stderr
    assert one(db_url, "SELECT to_regclass('public.store_names'), to_regclass('public.local_stores'),"
                       " (SELECT count(*) FROM public.orders)") == (None, None, 1)   # the orders themselves stay


def test_the_list_is_what_postgres_drops(db_url):
    """Compared with PostgreSQL's own list: the NOTICE of a DROP SCHEMA ... CASCADE that is rolled back."""
    execute(db_url, *PLANNING_DEPENDENTS,
            "CREATE TYPE public.size_of AS (store planning.stores, n int)",
            "CREATE TABLE public.plan_copy (id int, what infra.customer_plan DEFAULT 'FREE')",
            "CREATE SEQUENCE planning.ticket",
            "CREATE TABLE public.tickets (n bigint DEFAULT nextval('planning.ticket'))",
            "CREATE MATERIALIZED VIEW public.store_count AS SELECT count(*) FROM planning.stores")
    for schemas in (["planning"], ["infra"]):
        with psycopg.connect(db_url) as conn:
            conn.execute("SET search_path = pg_catalog")   # descriptions then name every schema
            listed = migrate_lib.outside_dependents(conn, schemas)
            described = {conn.execute("SELECT pg_describe_object(%s, %s, %s)", d.key).fetchone()[0] for d in listed}
            notices: list[str] = []
            conn.add_notice_handler(lambda diag: notices.append(diag.message_detail or diag.message_primary))
            conn.execute(f"DROP SCHEMA {schemas[0]} CASCADE")
            conn.rollback()
        dropped = {ln.removeprefix("drop cascades to ") for text in notices for ln in text.splitlines()}
        outside = {d for d in dropped if f" {schemas[0]}." not in f" {d}" and f"table {schemas[0]}." not in d}
        assert described == outside, (described ^ outside)
        assert len(listed) >= (9 if schemas == ["planning"] else 1)


def test_rollback_names_what_it_would_drop_outside_the_module_and_needs_cascade(db_url):
    execute(db_url, "CREATE TABLE public.vip (level int) INHERITS (infra.customers)",
            "INSERT INTO public.vip (name, email, plan, status, level)"
            " VALUES ('V', 'v@example.com', 'FREE', 'ACTIVE', 1)",
            "CREATE TABLE public.plans (id int, plan infra.customer_plan)")
    later = [m.id for m in migrate_lib.load(["infra"])][1:]
    for mid in reversed(later):  # the migrations after the first drop no table: nothing outside, no question
        first = run_dbtool("rollback", "-m", "infra", "--database-url", db_url)
        assert first.returncode == 0 and f"rolled back {mid}" in first.stderr, first.stderr
    out = run_dbtool("rollback", "-m", "infra", "--yes", "--database-url", db_url)
    line = one_line_error(out, 2)
    assert "table public.vip (and its rows)" in line and "table column public.plans.plan" in line
    assert one(db_url, "SELECT to_regclass('infra.customers') IS NOT NULL, (SELECT count(*) FROM public.vip)") \
        == (True, 1)
    assert one(db_url, "SELECT count(*) FROM _yoyo_migration WHERE migration_id = 'infra_0001_initial'") == (1,)
    out = run_dbtool("rollback", "-m", "infra", "--yes", "--cascade", "--database-url", db_url)
    assert out.returncode == 0 and "rolled back infra_0001_initial" in out.stderr, out.stderr
    assert one(db_url, "SELECT to_regclass('public.vip'), to_regclass('public.plans') IS NOT NULL") == (None, True)


def test_a_dependent_created_after_the_plan_is_not_dropped(db_url):
    """The check repeats inside each migration's transaction: what nobody confirmed is not dropped."""
    target = config.Target(db_url, "test")
    for _ in migrate_lib.load(["planning"])[1:]:  # the migrations after the first (weekly_actuals, the grants)
        migrate_lib.rollback(target, ["planning"], say=lambda _m: None)
    made = threading.Event()

    def confirm(plan):  # while "the operator reads the prompt", someone adds a view on a module table
        assert plan.tables and not plan.outside
        execute(db_url, "CREATE VIEW public.late AS SELECT * FROM planning.workflows")
        made.set()

    with pytest.raises(UsageError, match=r"would now also drop view public\.late"):
        migrate_lib.rollback(target, ["planning"], say=lambda _m: None, confirm=confirm)
    assert made.is_set()
    assert one(db_url, "SELECT to_regclass('public.late') IS NOT NULL, to_regclass('planning.stores') IS NOT NULL") \
        == (True, True)


# -- 4: rollback asks before it drops data ----------------------------------------------------

def test_rollback_of_every_module_or_every_migration_or_of_tables_asks(db_url):
    status = "SELECT count(*) FROM _yoyo_migration"
    for args in ((), ("--all", "-m", "planning")):
        out = run_dbtool("rollback", *args, "--database-url", db_url)
        assert "use --yes" in one_line_error(out, 2)
        assert one(db_url, status) == (len(migrate_lib.load(modules())),)
    planning = [m.id for m in migrate_lib.load(["planning"])]
    assert run_dbtool("seed", "-m", "planning", "--database-url", db_url).returncode == 0
    out = run_dbtool("rollback", "-m", "planning", "--database-url", db_url)   # the latest drops weekly_actuals
    line = one_line_error(out, 2)
    assert "drops 1 table(s) and their rows" in line and "use --yes" in line
    assert counts(db_url, ["planning"])["planning.weekly_actuals"] > 0
    out = run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url)
    assert out.returncode == 0 and f"rolled back {planning[-1]}" in out.stderr, out.stderr
    for mid in reversed(planning[1:-1]):
        only_grants = run_dbtool("rollback", "-m", "planning", "--database-url", db_url)  # drops no table: no question
        assert only_grants.returncode == 0 and f"rolled back {mid}" in only_grants.stderr, only_grants.stderr
    assert run_dbtool("seed", "--clear", "-m", "planning", "--database-url", db_url).returncode == 0
    out = run_dbtool("rollback", "-m", "planning", "--database-url", db_url)   # the first drops the others (empty)
    line = one_line_error(out, 2)
    assert f"drops {len(counts(db_url, ['planning']))} table(s) and their rows" in line and "use --yes" in line
    out = run_dbtool("rollback", "-m", "planning", "--yes", "--database-url", db_url)
    assert out.returncode == 0 and f"rolled back {planning[0]}" in out.stderr


def test_the_question_names_what_goes_and_a_wrong_answer_changes_nothing(db_url):
    execute(db_url, "CREATE VIEW public.store_names AS SELECT store_id FROM planning.stores")
    wrong = run_on_a_terminal("rollback", "--all", "-m", "planning", "--cascade", "--database-url", db_url,
                              typed="yes")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr   # the answer's newline went to the terminal
    assert wrong.stderr.rstrip().endswith("dbtool: confirmation did not match: nothing was rolled back")
    planning = [m.id for m in migrate_lib.load(["planning"])]
    assert f"rolls back {', '.join(reversed(planning))}" in wrong.stderr
    tables = len(counts(db_url, ["planning"]))
    assert f"drops {tables} table(s) and every row in them: planning.categories, " in wrong.stderr
    assert "also drops, outside the module: view public.store_names" in wrong.stderr
    assert "Type planning to confirm" in wrong.stderr
    assert one(db_url, "SELECT count(*) FROM _yoyo_migration WHERE migration_id LIKE 'planning%%'") == (len(planning),)
    everything = run_on_a_terminal("rollback", "--cascade", "--database-url", db_url, typed="planning")
    assert "Type all to confirm" in everything.stderr and everything.returncode == 2
    right = run_on_a_terminal("reset", "-m", "planning", "--cascade", "--database-url", db_url, typed="planning")
    assert right.returncode == 0, right.stderr
    assert "drops schema planning and all its data" in right.stderr and "view public.store_names" in right.stderr
    assert one(db_url, "SELECT to_regnamespace('planning'), to_regclass('public.store_names')") == (None, None)


# -- 11: an empty database URL is a usage error -------------------------------------------------

@pytest.mark.parametrize("args", [("migrate",), ("rollback", "--yes"), ("seed", "--clear"), ("status",)])
def test_an_empty_database_url_is_refused_not_replaced_by_the_local_cluster(args, tmp_path):
    devdb = tmp_path / "pg"
    for how, env in ((["--database-url", ""], {}), (["--database-url", " "], {}), ([], {"DATABASE_URL": ""})):
        out = run_dbtool(*args, *how, env={**env, "DBTOOL_DEVDB_DIR": str(devdb)})
        line = one_line_error(out, 2)
        assert "empty" in line and ("--database-url" in line or "DATABASE_URL" in line), line
        assert "database:" not in out.stderr                     # it never said where it connected: it did not
    assert not devdb.exists()


def test_resolve_refuses_an_empty_url(monkeypatch):
    with pytest.raises(UsageError, match="--database-url is empty"):
        config.resolve("", start_dev=False)
    monkeypatch.setenv("DATABASE_URL", "")
    with pytest.raises(UsageError, match="DATABASE_URL is set but empty"):
        config.resolve(None, start_dev=False)
