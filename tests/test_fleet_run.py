"""Issue 16 on a real server: 20 databases in one run of migrate, validate, status and wait.

Of the 20: one has drift, one is held by a long transaction (the migration lock and a table lock), one is
unreachable (a closed port, a password in its URL), one needs every migration (an empty database). Each is
reported as such, the rest are migrated and validated, nothing is applied twice, a second run is a no-op;
canary and stop-on-failure leave the rest unstarted; Ctrl-C stops between migrations.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree as ET

import psycopg
import pytest
from psycopg import sql

from dbtool import migrate as migrate_lib
from dbtool.errors import EXIT_CONNECT, EXIT_FINDINGS
from dbtool.lock import LOCK_CLASS, LOCK_OBJ
from dbtool.paths import modules
from helpers import add_migration, copy_project, finish_dbtool, run_dbtool, start_dbtool

N = 20
DRIFT, HELD, UNREACHABLE, EMPTY = 3, 7, 11, 15
PASSWORD = "fleet-pw-Zq7#x"          # in a reachable URL (trust auth ignores it) ...
DEAD_PASSWORD = "dead-pw-9Kd!v"      # ... and in the unreachable one
ALL_IDS = sorted(m.id for m in migrate_lib.load(modules()))


def name(i: int) -> str:
    return f"fleet_{i:02d}"


def url(cluster, dbname: str, password: str | None = None) -> str:
    who = f"postgres:{password.replace('#', '%23').replace('!', '%21')}" if password else "postgres"
    return f"postgresql://{who}@/{dbname}?host={cluster.sockdir}&port={cluster.port}"


def admin(cluster):
    return psycopg.connect(url(cluster, "postgres"), autocommit=True)


@pytest.fixture(scope="module")
def fleet(pg_cluster, migrated_proc, tmp_path_factory):
    """20 databases (from the migrated template, an empty one), and a targets file naming them."""
    with admin(pg_cluster) as conn:
        for i in range(N):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name(i))))
            template = "template0" if i == EMPTY else migrated_proc.template_dbname
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name(i)),
                                                                          sql.Identifier(template)))
    with psycopg.connect(url(pg_cluster, name(DRIFT)), autocommit=True) as conn:
        conn.execute("ALTER TABLE planning.stores ALTER COLUMN region DROP NOT NULL")
    lines = ["# the test fleet: label, then the database", ""]
    for i in range(N):
        if i == UNREACHABLE:
            target = f"postgresql://app:{DEAD_PASSWORD.replace('!', '%21')}@127.0.0.1:1/{name(i)}"
        else:
            target = url(pg_cluster, name(i), PASSWORD if i == 1 else None)
        lines.append(f"db-{i:02d}   {target}   # {'drift' if i == DRIFT else 'ok'}")
    path = tmp_path_factory.mktemp("fleet") / "targets.txt"
    path.write_text("\n".join(lines) + "\n")
    yield path
    with admin(pg_cluster) as conn:
        for i in range(N):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name(i))))


@contextmanager
def held(cluster):
    """A long transaction holding the migration lock and an ACCESS EXCLUSIVE lock on a module table."""
    with psycopg.connect(url(cluster, name(HELD)), application_name="long-report") as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, LOCK_OBJ))
        conn.execute("LOCK TABLE crm.customer IN ACCESS EXCLUSIVE MODE")
        yield conn.info.backend_pid
        conn.rollback()


def applied_counts(cluster) -> dict[str, dict[str, int]]:
    """Per reachable database: how often each migration was applied (yoyo's log)."""
    out = {}
    for i in range(N):
        if i == UNREACHABLE:
            continue
        with psycopg.connect(url(cluster, name(i))) as conn:
            if conn.execute("SELECT to_regclass('_yoyo_log')").fetchone() == (None,):
                out[name(i)] = {}
                continue
            out[name(i)] = dict(conn.execute(
                "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply' GROUP BY 1").fetchall())
    return out


def by_label(report: dict) -> dict[str, dict]:
    return {t["label"]: t for t in report["targets"]}


def no_secret(*outs) -> None:
    for out in outs:
        for secret in (PASSWORD, DEAD_PASSWORD, "fleet-pw", "dead-pw"):
            assert secret not in out.stdout + out.stderr


def test_migrate_validate_status_wait_across_twenty_databases(fleet, pg_cluster):
    before = applied_counts(pg_cluster)
    assert before[name(EMPTY)] == {} and all(len(v) == len(ALL_IDS) for k, v in before.items() if k != name(EMPTY))

    with held(pg_cluster) as holder:
        migrated = run_dbtool("migrate", "--targets", str(fleet), "--continue-on-error", "--lock-timeout", "1",
                              "--format", "json", timeout=300)
        validated_held = run_dbtool("validate", "--targets", str(fleet), "--continue-on-error", "--lock-timeout",
                                    "1", "--format", "json", timeout=300)
    assert migrated.returncode == EXIT_CONNECT, migrated.stderr  # the worst: 3 (unreachable) > 1 (held)
    report = json.loads(migrated.stdout)
    assert report["format"] == "dbtool.fleet/1" and report["command"] == "migrate"
    targets = by_label(report)
    assert [t["label"] for t in report["targets"]] == [f"db-{i:02d}" for i in range(N)]
    assert report["summary"]["states"] == {**{s: 0 for s in report["summary"]["states"]}, "ok": N - 2, "failed": 1,
                                           "unreachable": 1}
    held_t = targets[f"db-{HELD:02d}"]
    assert held_t["state"] == "failed" and held_t["exit_code"] == EXIT_FINDINGS
    assert "gave up after 1s waiting for the migration lock held by pid" in held_t["summary"]
    assert f"pid {holder} (long-report" in held_t["summary"]
    dead = targets[f"db-{UNREACHABLE:02d}"]
    assert dead["state"] == "unreachable" and dead["exit_code"] == EXIT_CONNECT
    assert dead["summary"].startswith(f"cannot connect to postgresql://app@127.0.0.1:1/{name(UNREACHABLE)}")
    assert targets[f"db-{EMPTY:02d}"]["result"]["applied"] and \
        sorted(targets[f"db-{EMPTY:02d}"]["result"]["applied"]) == ALL_IDS
    for i in range(N):
        if i not in (HELD, UNREACHABLE, EMPTY):
            assert targets[f"db-{i:02d}"]["state"] == "ok" and targets[f"db-{i:02d}"]["result"]["applied"] == []
            assert targets[f"db-{i:02d}"]["summary"].startswith("nothing to apply")

    # validate while the long transaction holds crm.customer: that one times out naming it, the drift is found.
    assert validated_held.returncode == EXIT_CONNECT, validated_held.stderr
    vt = by_label(json.loads(validated_held.stdout))
    assert vt[f"db-{HELD:02d}"]["state"] == "failed"
    assert "validate gave up after 1s waiting for a table lock" in vt[f"db-{HELD:02d}"]["summary"]
    assert f"pid {holder} (long-report" in vt[f"db-{HELD:02d}"]["summary"]

    after = applied_counts(pg_cluster)
    assert all(n == 1 for counts in after.values() for n in counts.values()), "a migration was applied twice"
    assert after[name(EMPTY)] == {mid: 1 for mid in ALL_IDS}

    # The lock gone: a second migrate changes nothing anywhere (the unreachable one still fails).
    again = run_dbtool("migrate", "--targets", str(fleet), "--continue-on-error", timeout=300)
    assert again.returncode == EXIT_CONNECT, again.stderr
    lines = again.stdout.splitlines()
    assert sum("nothing to apply" in line for line in lines[:N]) == N - 1
    assert lines[-1].startswith(f"migrate: {N} target(s): {N - 1} ok, 1 unreachable in ") and \
        lines[-1].endswith("exit 3")
    assert applied_counts(pg_cluster) == after

    validated = run_dbtool("validate", "--targets", str(fleet), "--continue-on-error", "--format", "json",
                           timeout=300)
    assert validated.returncode == EXIT_CONNECT, validated.stderr
    report = json.loads(validated.stdout)
    vt = by_label(report)
    assert report["summary"]["states"]["ok"] == N - 2
    assert report["summary"]["states"]["drift"] == 1 and report["summary"]["states"]["unreachable"] == 1
    drift = vt[f"db-{DRIFT:02d}"]
    assert drift["state"] == "drift" and drift["exit_code"] == EXIT_FINDINGS
    assert drift["result"]["format"] == "dbtool.validate/1" and not drift["result"]["ok"]
    assert any(f["object"] == "planning.stores.region" for f in drift["result"]["findings"])
    assert vt[f"db-{EMPTY:02d}"]["state"] == "ok" and vt[f"db-{EMPTY:02d}"]["result"]["ok"]
    assert vt["db-01"]["result"]["database"] == url(pg_cluster, name(1))  # printed without its password

    status = run_dbtool("status", "--targets", str(fleet), "--continue-on-error", "--exit-code", "--format", "json",
                        timeout=300)
    assert status.returncode == EXIT_CONNECT, status.stderr
    st = by_label(json.loads(status.stdout))
    assert st["db-00"]["result"]["format"] == "dbtool.status/1"
    assert st["db-00"]["summary"] == f"up to date: {len(ALL_IDS)} applied"
    assert not any(m["pending"] for t in st.values() if t["result"] for m in t["result"]["migrations"])

    junit = run_dbtool("validate", "--targets", str(fleet), "--continue-on-error", "--format", "junit", timeout=300)
    suites = ET.fromstring(junit.stdout)
    assert [s.get("name") for s in suites.iter("testsuite")] == [f"db-{i:02d}" for i in range(N)]
    by_name = {s.get("name"): s for s in suites.iter("testsuite")}
    assert int(by_name[f"db-{DRIFT:02d}"].get("failures")) >= 1
    assert by_name[f"db-{UNREACHABLE:02d}"].get("errors") == "1"
    assert int(by_name["db-00"].get("tests")) > 100 and by_name["db-00"].get("failures") == "0"

    waited = run_dbtool("wait", "--targets", str(fleet), "--continue-on-error", "--timeout", "2", timeout=120)
    assert waited.returncode == EXIT_CONNECT, waited.stderr
    assert waited.stdout.splitlines()[-1].startswith(f"wait: {N} target(s): {N - 1} ok, 1 unreachable")

    no_secret(migrated, validated_held, again, validated, status, junit, waited)


def test_canary_and_stop_on_failure_leave_the_rest_unstarted(fleet, pg_cluster, tmp_path):
    lines = [ln for ln in fleet.read_text().splitlines() if ln.startswith("db-")]
    dead = lines[UNREACHABLE]
    canary = tmp_path / "canary.txt"
    canary.write_text("\n".join([dead, *lines[:4]]) + "\n")
    out = run_dbtool("migrate", "--targets", str(canary), "--canary", "1", "--continue-on-error", timeout=120)
    assert out.returncode == EXIT_CONNECT, out.stderr
    table = out.stdout.splitlines()
    assert "unreachable" in table[0] and all("not started" in line for line in table[1:5])
    assert "canary target db-11 unreachable (--canary 1)" in table[-1]

    ordered = tmp_path / "ordered.txt"
    ordered.write_text("\n".join([lines[0], dead, lines[1], lines[2]]) + "\n")
    stop = run_dbtool("validate", "--targets", str(ordered), "--parallel", "1", timeout=120)
    assert stop.returncode == EXIT_CONNECT, stop.stderr
    states = [line.split()[1] for line in stop.stdout.splitlines()[:4]]
    assert states == ["ok", "unreachable", "not", "not"], stop.stdout
    assert "--continue-on-error goes on" in stop.stdout

    go_on = run_dbtool("validate", "--targets", str(ordered), "--parallel", "1", "--continue-on-error", timeout=120)
    assert [line.split()[1] for line in go_on.stdout.splitlines()[:4]] == ["ok", "unreachable", "ok", "ok"]
    assert go_on.returncode == EXIT_CONNECT
    no_secret(out, stop, go_on)


def test_targets_from_a_registry_query(fleet, pg_cluster):
    registry = url(pg_cluster, name(0))
    with psycopg.connect(registry, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.fleet_registry (label text, url text, region text)")
        conn.execute("TRUNCATE public.fleet_registry")
        for i in (0, 2, DRIFT):
            conn.execute("INSERT INTO public.fleet_registry VALUES (%s, %s, 'eu')",
                         (f"tenant-{i}", url(pg_cluster, name(i))))
    query = "SELECT label, url FROM public.fleet_registry WHERE region = 'eu' ORDER BY label"
    out = run_dbtool("validate", "--targets-query", query, "--registry-url", registry, "--format", "json")
    assert out.returncode == EXIT_FINDINGS, out.stderr
    report = json.loads(out.stdout)
    assert [(t["label"], t["state"]) for t in report["targets"]] == [("tenant-0", "ok"), ("tenant-2", "ok"),
                                                                     (f"tenant-{DRIFT}", "drift")]
    assert report["targets_from"].startswith("--targets-query on postgresql://postgres@/fleet_00")
    # --database-url is the registry when --registry-url is not given; one column: the URL is the label
    one = run_dbtool("status", "--targets-query", "SELECT url FROM public.fleet_registry ORDER BY label",
                     "--database-url", registry)
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[0].startswith(url(pg_cluster, name(0)))
    # read-only: a query that writes is refused (exit 2), nothing written
    writes = run_dbtool("status", "--targets-query", "INSERT INTO public.fleet_registry VALUES ('x', 'y') "
                        "RETURNING label, url", "--registry-url", registry)
    assert writes.returncode == 2 and "read-only" in writes.stderr, writes.stderr
    bad = run_dbtool("status", "--targets-query", "SELECT 1, 2, 3", "--registry-url", registry)
    assert bad.returncode == 2 and "returned 3 columns" in bad.stderr
    with psycopg.connect(registry) as conn:
        assert conn.execute("SELECT count(*) FROM public.fleet_registry").fetchone() == (3,)


def test_ctrl_c_stops_between_migrations_then_a_second_stops_at_once(fleet, pg_cluster, tmp_path):
    """First Ctrl-C: running targets finish their current migration and stop; the rest never start. Second:
    the process leaves at once and the server rolls back the migration that was running."""
    root = copy_project(tmp_path / "project")
    add_migration(root, "crm", "crm_0098_slow_one", {"998_slow_one.sql": "SELECT pg_sleep(1.5);\n"})
    add_migration(root, "crm", "crm_0099_slow_two", {"999_slow_two.sql": "SELECT pg_sleep(1.5);\n"})
    targets = tmp_path / "slow.txt"
    names = [f"fleet_slow_{i}" for i in range(4)]
    with admin(pg_cluster) as conn:
        for db in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(db),
                                                                          sql.Identifier(name(0))))
    targets.write_text("".join(f"{db} {url(pg_cluster, db)}\n" for db in names))
    env = {"DBTOOL_ROOT": str(root)}

    def sleeping(proc) -> bool:
        with admin(pg_cluster) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s "
                                "AND query LIKE %s", (f"% pid={proc.pid}", "%pg_sleep%")).fetchone()[0] == 2

    def slow_applied(db: str) -> list[str]:
        with psycopg.connect(url(pg_cluster, db)) as conn:
            return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration WHERE migration_id LIKE "
                                               "'%slow%' ORDER BY 1").fetchall()]

    try:
        proc = start_dbtool("migrate", "--targets", str(targets), "--parallel", "2", "--format", "json", env=env)
        end = time.monotonic() + 60
        while not sleeping(proc):
            assert time.monotonic() < end and proc.poll() is None, "the slow migrations never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out = finish_dbtool(proc, timeout=60)
        assert out.returncode == 130, out.stderr
        report = json.loads(out.stdout)
        assert report["interrupted"] and report["exit_code"] == 130
        states = [t["state"] for t in report["targets"]]
        assert states == ["interrupted", "interrupted", "not started", "not started"], states
        assert "Ctrl-C again stops them now" in out.stderr
        for db in names[:2]:
            assert slow_applied(db) == ["crm_0098_slow_one"]  # finished its current migration, not the next
        for db in names[2:]:
            assert slow_applied(db) == []

        proc = start_dbtool("migrate", "--targets", str(targets), "--parallel", "2", env=env)
        end = time.monotonic() + 60
        while not sleeping(proc):
            assert time.monotonic() < end and proc.poll() is None, "the slow migrations never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out = finish_dbtool(proc, timeout=60)
        assert out.returncode == 130 and time.monotonic() - started < 1.4, out.stderr
        assert "stopped by a second Ctrl-C while running" in out.stdout
        time.sleep(2.5)  # the server notices the closed connections (client_connection_check_interval) and rolls back
        assert [slow_applied(db) for db in names] == [["crm_0098_slow_one"]] * 2 + [[]] * 2

        done = run_dbtool("migrate", "--targets", str(targets), env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert all(slow_applied(db) == ["crm_0098_slow_one", "crm_0099_slow_two"] for db in names)
        with psycopg.connect(url(pg_cluster, names[0])) as conn:
            assert conn.execute("SELECT count(*) FROM _yoyo_log WHERE operation = 'apply' GROUP BY migration_id "
                                "ORDER BY 1 DESC LIMIT 1").fetchone() == (1,)
    finally:
        with admin(pg_cluster) as conn:
            for db in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


def test_the_report_of_a_dry_run_and_of_migrate_to(fleet, pg_cluster, tmp_path):
    targets = tmp_path / "two.txt"
    targets.write_text(f"a {url(pg_cluster, name(0))}\nb {url(pg_cluster, name(2))}\n")
    dry = run_dbtool("migrate", "--targets", str(targets), "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    assert [t["result"] for t in json.loads(dry.stdout)["targets"]] == [{"pending": [], "dry_run": True}] * 2
    first = ALL_IDS[0]
    to = run_dbtool("migrate", "--targets", str(targets), "--to", first)  # applied everywhere: nothing to do
    assert to.returncode == 0, to.stderr
    assert all(f"nothing to apply: {first} is applied" in line for line in to.stdout.splitlines()[:2])
    unknown = run_dbtool("migrate", "--targets", str(targets), "--to", "crm_9999")
    assert unknown.returncode == 2 and "unknown migration" in unknown.stderr
    assert Path(targets).exists()


def test_a_libpq_service_is_a_target(fleet, pg_cluster, tmp_path):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[fleet-a]\nhost={pg_cluster.sockdir}\nport={pg_cluster.port}\nuser=postgres\n"
                        f"dbname={name(0)}\n")
    targets = tmp_path / "services.txt"
    targets.write_text(f"a service=fleet-a\nb service=fleet-a dbname={name(2)}\nc service=fleet-nowhere\n")
    out = run_dbtool("status", "--targets", str(targets), "--continue-on-error", "--format", "json",
                     env={"PGSERVICEFILE": str(services)})
    assert out.returncode == EXIT_CONNECT, out.stderr
    found = {t["label"]: t for t in json.loads(out.stdout)["targets"]}
    assert found["a"]["state"] == "ok" and found["a"]["database"] == "service=fleet-a"
    assert found["b"]["result"]["database"] == f"service=fleet-a dbname={name(2)}"
    assert found["c"]["state"] == "unreachable"
    assert found["c"]["summary"].startswith('cannot connect to service=fleet-nowhere: ') and \
        'definition of service "fleet-nowhere" not found' in found["c"]["summary"]
