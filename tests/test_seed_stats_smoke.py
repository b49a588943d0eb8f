"""`dbtool seed`, `stats`, `smoke` through the real CLI, and the pool factory."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest

from dbtool import pool
from dbtool import seed as seed_lib
from dbtool.config import Target
from dbtool.errors import UsageError
from dbtool.paths import modules
from dbtool.repo import table_names
from dbtool.repo.crm import reco_run
from helpers import SPEC_TABLES, row_counts, run_dbtool

SEEDED = {"infra.customers": 3, "infra.agents": 5, "infra.events": 3, "infra.recommendations": 3,
          "chatbot.users": 3, "chatbot.sessions": 2, "chatbot.messages": 4, "chatbot.qualified_leads": 1,
          "crm.product": 3, "crm.customer": 1, "planning.workflows": 1, "planning.weekly_actuals": 3}

ALL_TABLES = """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname = ANY(%s) ORDER BY 1, 2"""


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return row_counts(conn, conn.execute(ALL_TABLES, (modules(),)).fetchall())


def test_seed_twice_then_clear_removes_exactly_the_seed_rows(db_url):
    env = {"DATABASE_URL": db_url}
    assert run_dbtool("seed", env=env).returncode == 0
    once = counts(db_url)
    assert all(once[t] == n for t, n in SEEDED.items()), once
    empty = [f"{m}.{t}" for m in ("crm", "planning") for t in sorted(SPEC_TABLES[m]) if once[f"{m}.{t}"] == 0]
    assert not empty, f"every crm and planning table of the specs gets seed rows, not {empty}"
    out = run_dbtool("seed", env=env)
    assert out.returncode == 0 and counts(db_url) == once                      # idempotent
    with psycopg.connect(db_url) as conn:                                       # rows that are not ours
        conn.execute("INSERT INTO crm.customer (customer_code) VALUES ('MINE')")
        conn.execute("INSERT INTO crm.order_line (customer_code, product_key, order_date, amount_ht)"
                     " VALUES ('MINE', 'PINOT_NOIR_2022', '2025-01-01', 1)")
        conn.execute("INSERT INTO chatbot.users (phone_number) VALUES ('+0000')")
        cfg = conn.execute("SELECT config, config_hash FROM crm.reco_run WHERE run_id = 'SEED_RUN_001'").fetchone()
    assert reco_run.config_hash(cfg[0]) == cfg[1]
    assert run_dbtool("seed", "--clear", env=env).returncode == 0
    left = counts(db_url)
    assert left["crm.customer"] == 1 and left["crm.order_line"] == 1 and left["chatbot.users"] == 1
    assert left["crm.product"] == 1          # PINOT_NOIR_2022 is kept: a non-seed order line references it
    assert sum(left.values()) == 4, left
    assert run_dbtool("seed", "--clear", env=env).returncode == 0 and counts(db_url) == left


@pytest.mark.parametrize("module", modules())
def test_seed_files_run_under_psql_twice(module, db_url):
    def psql_f(path) -> dict[str, int]:
        out = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), db_url],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return {t: n for t, n in counts(db_url).items() if t.startswith(module + ".")}

    once = psql_f(seed_lib.seed_file(module))
    assert all(once[t] == n for t, n in SEEDED.items() if t in once), once
    assert sum(once.values()) > 0
    assert psql_f(seed_lib.seed_file(module)) == once                   # idempotent
    assert sum(psql_f(seed_lib.seed_file(module, clear=True)).values()) == 0


def test_seed_on_an_unmigrated_database_says_so(empty_url):
    out = run_dbtool("seed", "--module", "crm", env={"DATABASE_URL": empty_url})
    assert out.returncode == 1 and "migrate" in out.stderr and "Traceback" not in out.stderr


def test_stats_text_and_json(db_url):
    env = {"DATABASE_URL": db_url}
    assert run_dbtool("seed", "-m", "infra", env=env).returncode == 0
    text = run_dbtool("stats", "-m", "infra", env=env)
    assert text.returncode == 0
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("infra.agents"))
    assert line.split()[1:3] == ["5", "exact"]
    js = json.loads(run_dbtool("stats", "-m", "infra", "--format", "json", env=env).stdout)
    agents = next(t for t in js["tables"] if t["table"] == "agents")
    assert (agents["rows"], agents["method"], agents["total_bytes"] > 0) == (5, "exact", True)
    assert {t["module"] for t in js["tables"]} == {"infra"}
    assert sorted(t["table"] for t in js["tables"]) == table_names("infra")  # every table of sql/, once


def test_stats_estimates_big_tables_and_says_so(postgresql):
    from dbtool import stats
    postgresql.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name)"
                       " SELECT 'c' || g, 'n' FROM generate_series(1, 500) g")
    postgresql.execute("ANALYZE planning.store_clusters")
    got = {s.table: s for s in stats.table_stats(postgresql, ["planning"], exact_max_bytes=0)}
    assert got["store_clusters"].exact is False and got["store_clusters"].rows == 500
    assert got["store_clusters"].as_json()["method"] == "estimated"
    exact = {s.table: s for s in stats.table_stats(postgresql, ["planning"])}
    assert (exact["store_clusters"].exact, exact["store_clusters"].rows) == (True, 500)
    assert exact["workflows"].module == "planning"      # names come back as bound values, not literals


def test_smoke_passes_and_leaves_no_trace(db_url):
    env = {"DATABASE_URL": db_url}
    assert run_dbtool("seed", env=env).returncode == 0
    seqs = "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = ANY(%s) ORDER BY 1"
    with psycopg.connect(db_url) as conn:
        before_seq = conn.execute(seqs, (modules(),)).fetchall()
    before = counts(db_url)
    out = run_dbtool("smoke", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    smoked = sorted(ln.split()[1] for ln in out.stdout.splitlines() if ln.startswith("ok "))
    assert smoked == sorted(f"{m}.{t}" for m in modules() for t in table_names(m))  # every table of sql/, once
    assert counts(db_url) == before
    with psycopg.connect(db_url) as conn:
        assert conn.execute(seqs, (modules(),)).fetchall() == before_seq


def test_smoke_exits_1_when_a_table_fails(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE FUNCTION planning.refuse() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$ BEGIN RAISE EXCEPTION 'no writes here'; END $$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON planning.stores FOR EACH ROW"
                     " EXECUTE FUNCTION planning.refuse()")
    out = run_dbtool("smoke", "-m", "planning", env={"DATABASE_URL": db_url})
    assert out.returncode == 1
    assert "FAIL planning.stores" in out.stdout and "no writes here" in out.stdout
    assert "FAIL planning.historical_sales" in out.stdout     # needs a store: cannot be checked either
    assert "ok   planning.workflows" in out.stdout and "Traceback" not in out.stderr


def test_smoke_commits_nothing_even_when_a_delete_keeps_its_row(db_url):
    """A BEFORE DELETE trigger returning NULL silently keeps the row: smoke must still leave nothing."""
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE FUNCTION planning.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER keep BEFORE DELETE ON planning.categories FOR EACH ROW"
                     " EXECUTE FUNCTION planning.keep()")
        conn.execute("INSERT INTO planning.categories (category_id, category_name) VALUES ('mine', 'Mine')")
    before = counts(db_url)
    out = run_dbtool("smoke", "-m", "planning", env={"DATABASE_URL": db_url})
    assert out.returncode == 1 and "FAIL planning.categories" in out.stdout and "row not deleted" in out.stdout
    with psycopg.connect(db_url) as other:                  # another session: only committed rows are seen
        assert row_counts(other, [("planning", "categories")]) == {"planning.categories": before["planning.categories"]}
        assert other.execute("SELECT category_id FROM planning.categories WHERE category_id LIKE 'smk%'"
                             " OR category_name LIKE 'smk%'").fetchall() == []
    assert counts(db_url) == before


def test_pool_sizes_and_health_checked_connections(db_url, monkeypatch):
    assert pool.pool_sizes() == (20, 60)
    monkeypatch.setenv("DBTOOL_POOL_MIN", "2")
    monkeypatch.setenv("DBTOOL_POOL_MAX", "3")
    assert pool.pool_sizes() == (2, 3)
    with pool.make_pool(Target(db_url, "test")) as p:
        assert (p.min_size, p.max_size) == (2, 3)
        with p.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        p.check()
    with pool.connection(Target(db_url, "test")) as conn:
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("dbtool-script",)
    monkeypatch.setenv("DBTOOL_POOL_MAX", "x")
    with pytest.raises(UsageError, match=r"^DBTOOL_POOL_MAX='x': "):
        pool.pool_sizes()


@pytest.mark.parametrize("cmd", ["seed", "stats", "smoke"])
def test_help(cmd):
    out = run_dbtool(cmd, "--help")
    assert out.returncode == 0 and "Exit codes" in out.stdout


def test_a_pooled_connection_killed_by_the_server_is_replaced(db_url):
    with pool.make_pool(Target(db_url, "test"), min_size=1, max_size=1) as p:
        with p.connection() as conn:
            victim = conn.info.backend_pid
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
        with p.connection() as conn:  # checked on the way out of the pool: the dead one is thrown away
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != victim


def test_seed_holds_the_rows_the_specifications_list(db_url):
    assert run_dbtool("seed", "--database-url", db_url).returncode == 0
    with psycopg.connect(db_url) as conn:
        one = lambda q: conn.execute(q).fetchone()  # noqa: E731
        assert one("SELECT count(*), bool_and(consent) FROM chatbot.users") == (3, True)
        assert one("SELECT count(*), count(DISTINCT (state, is_active)) FROM chatbot.sessions") == (2, 2)
        assert one("SELECT count(*) FROM chatbot.messages") == (4,)
        assert one("SELECT count(*), min(qualification_score) >= 60 FROM chatbot.qualified_leads") == (1, True)
        names = {r[0] for r in conn.execute("SELECT name FROM infra.customers")}
        assert names == {"Acme Corp", "StartupCo", "Demo Customer"}
        assert [one(f"SELECT count(*) FROM infra.{t}")[0] for t in ("agents", "events", "recommendations")] \
            == [5, 3, 3]
        assert one("SELECT count(*) FROM crm.product WHERE product_key = 'PINOT_NOIR_2022'") == (1,)
        assert one("SELECT count(*) FROM crm.customer WHERE customer_code = 'CUST_001'") == (1,)
