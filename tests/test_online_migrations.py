"""Issue 14, part 3: online changes. Migrations of several steps outside one transaction (a backfill in
`-- batch:` runs, SET NOT NULL through a validated CHECK, a foreign key NOT VALID then validated, a unique
constraint USING an index built CONCURRENTLY), stopped between steps (by hand, or `kill -9`) and completed by
the next `dbtool migrate`, with `validate` reporting the state in between; and `migrate --lock-retries N`.

The real migration (crm's, with `-- batch:` files: updated_at) is found on disk, with the one before it; the
foreign key and unique constraint patterns, which no seed needs, come from tests/online_corpus/.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dbtool import migrate as migrate_lib
from dbtool.config import Target
from dbtool.errors import MigrationError
from dbtool.migration_steps import SqlFile, lex, load_file
from dbtool.paths import modules
from dbtool.psql_entry import entry_path, psql_options
from helpers import add_migration, catalog_of, copy_project, finish_dbtool, run_dbtool, start_dbtool

CORPUS = Path(__file__).parent / "online_corpus"


def _online() -> tuple[str, str, list[SqlFile]]:
    """crm's migration with `-- batch:` files, the migration before it, and its files, in order (from disk)."""
    migrations = migrate_lib.load(["crm"])
    for before, m in zip(migrations, migrations[1:]):
        files = [f for step in migrate_lib.file_steps(m) for f in step.load()]
        if any(f.batch for f in files):
            return m.id, before.id, files
    raise AssertionError("no crm migration has a `-- batch:` file")


def _target(f: SqlFile) -> str:
    """The table a `-- batch:` file's UPDATE changes, as written (schema.table)."""
    toks = [f.statements[0].text[s:e] for kind, s, e in lex(f.statements[0].text) if kind not in ("space", "comment")]
    assert toks[0].lower() == "update" and toks[2] == ".", toks[:4]
    return "".join(toks[1:4])


ONLINE, BEFORE, FILES = _online()
TABLES = [_target(f) for f in FILES if f.batch]   # the tables that get updated_at, in the migration's order
BIG = TABLES[0]                                   # filled with enough rows for several batches
SIZE = next(f.batch for f in FILES if f.batch) or 1
EXTRA = 2 * SIZE + 123


# -- helpers ----------------------------------------------------------------------------------------------------
def one(url: str, query: str | sql.Composable, params=None):
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def ident(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split("."))


def ok(out):
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out


def one_line_error(out, code: int = 1) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


def validate(url: str, *args: str, env: dict | None = None) -> tuple[int, list[dict]]:
    out = run_dbtool("validate", "--database-url", url, "--format", "json", *args, env=env)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)["findings"]


def recorded(url: str, mid: str) -> bool:
    return bool(one(url, "SELECT count(*) FROM _yoyo_migration WHERE migration_id = %s", (mid,)))


def not_backfilled(url: str, table: str) -> int:
    """Rows whose updated_at is not their created_at (NULL included)."""
    return one(url, sql.SQL("SELECT count(*) FROM {} WHERE updated_at IS DISTINCT FROM created_at").format(
        ident(table)))


def filled(url: str, table: str) -> int:
    """Rows of `table` whose updated_at is their created_at; 0 while the column does not exist."""
    schema, name = table.split(".")
    if not one(url, "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "AND column_name = 'updated_at'", (schema, name)):
        return 0
    return count(url, table) - not_backfilled(url, table)


def count(url: str, table: str) -> int:
    return one(url, sql.SQL("SELECT count(*) FROM {}").format(ident(table)))


def wait_until(url: str, query: str, params=None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(query, params).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"never true: {query}")


WAITING_MIGRATE = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND application_name LIKE 'dbtool migrate%%'
                     AND wait_event_type = 'Lock' AND query LIKE %s"""


def killed_run_gone(url: str) -> None:
    """The session of a killed migrate ends by itself (client_connection_check_interval: the server sees the
    client gone within 2s); until then it may still get its lock and finish its statement."""
    wait_until(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'dbtool migrate%%'")


def migrate_released_after_retries(url: str, blocker: psycopg.Connection, retried: int, *args: str,
                                   env: dict | None = None) -> subprocess.CompletedProcess:
    """`dbtool migrate` with the blocker's transaction ended once the run has said it retries `retried` times."""
    proc = start_dbtool("migrate", "--database-url", url, *args, env=env)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if sum("failed on lock_timeout" in ln for ln in seen) == retried:
                break
    finally:
        blocker.rollback()
    done = finish_dbtool(proc)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, "".join(seen) + done.stderr)


def run_by_hand(url: str, files: list[SqlFile], partial: SqlFile | None = None) -> None:
    """What a migrate stopped after `files` (and the first statement, or batch, of `partial`) leaves: every
    statement on its own, as in a non-transactional migration; a `-- batch:` file whole when unset (as psql)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for f in files:
            for stmt in f.statements:
                conn.execute(stmt.text)
        if partial is not None:
            with conn.transaction():
                if partial.batch:
                    conn.execute("SELECT set_config('dbtool.batch_rows', %s, true)", (str(partial.batch),))
                conn.execute(partial.statements[0].text)


def not_valid_constraints(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {f"{schema}.{t}.{c}" for t, c in conn.execute(
            "SELECT r.relname, c.conname FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
            "WHERE NOT c.convalidated AND c.connamespace = to_regnamespace(%s)", (schema,)).fetchall()}


# -- databases: a template migrated to just before the online migration, with rows ---------------------------------
def _admin(cluster) -> psycopg.Connection:
    return psycopg.connect(cluster.conninfo("postgres"), autocommit=True)


@pytest.fixture(scope="module")
def before_template(pg_cluster):
    """Every module migrated, crm only up to the migration before ONLINE; seeded, and BIG given 2 batches and
    more of rows: a database the application has used before the online migration came."""
    name = f"online_before_{uuid.uuid4().hex[:8]}"
    with _admin(pg_cluster) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_cluster.conninfo(name)
    target = Target(url, "test")
    migrate_lib.migrate(target, [m for m in modules() if m != "crm"], say=lambda _m: None)
    migrate_lib.migrate(target, ["crm"], say=lambda _m: None, to=BEFORE)
    ok(run_dbtool("seed", "--database-url", url))
    schema, table = BIG.split(".")
    cols = [c.name for c in catalog_of(url, [schema]).columns(schema, table) if not c.identity
            and c.name != "created_at"]
    with psycopg.connect(url, autocommit=True) as conn:
        assert count(url, BIG) > 0, f"the seed has no row in {BIG} to copy"
        listed = sql.SQL(", ").join(map(sql.Identifier, cols))
        conn.execute(sql.SQL("INSERT INTO {t} ({c}, created_at) SELECT {c}, now() - g * interval '1 minute' "
                             "FROM (SELECT * FROM {t} LIMIT 1) r, generate_series(1, %s) g").format(
            t=ident(BIG), c=listed), (EXTRA,))
    yield name
    with _admin(pg_cluster) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def upgrade_url(pg_cluster, before_template):
    """A copy of the template, for one test."""
    name = f"online_{uuid.uuid4().hex[:10]}"
    with _admin(pg_cluster) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                      sql.Identifier(before_template)))
    yield pg_cluster.conninfo(name)
    with _admin(pg_cluster) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- the real migration -----------------------------------------------------------------------------------------
def test_the_online_migration_is_not_transactional_and_lints_clean():
    (m,) = [m for m in migrate_lib.load(["crm"]) if m.id == ONLINE]
    assert not m.use_transactions
    assert len(TABLES) >= 1 and all(f.batch for f in FILES if f.batch)
    out = run_dbtool("lint", *[str(f.path) for f in FILES], "--format", "json")
    doc = json.loads(out.stdout)
    assert out.returncode == 0, [(f["file"], f["line"], f["rule"]) for f in doc["findings"]]
    assert {f["migration"] for f in doc["files"]} == {ONLINE}
    assert not any(f["transactional"] for f in doc["files"])


def test_upgrading_a_used_database_ends_as_a_fresh_one(upgrade_url, db_url):
    rc, findings = validate(upgrade_url)
    assert rc == 1 and {"kind": "migration", "object": ONLINE, "problem": "pending"}.items() <= \
        next(f for f in findings if f["kind"] == "migration").items()
    rows = count(upgrade_url, BIG)
    assert rows > SIZE

    out = ok(run_dbtool("migrate", "--database-url", upgrade_url))
    assert f"applied {ONLINE}" in out.stderr
    batches = math.ceil(rows / SIZE)
    assert f"{rows:,} rows in {batches:,} batches of at most {SIZE:,}" in out.stderr, out.stderr

    assert validate(upgrade_url) == (0, [])
    assert catalog_of(upgrade_url, ["crm"]) == catalog_of(db_url, ["crm"])
    for table in TABLES:
        assert count(upgrade_url, table) > 0 and not_backfilled(upgrade_url, table) == 0, table
    with psycopg.connect(upgrade_url, autocommit=True) as conn:  # the trigger keeps it current from now on
        changed = conn.execute(sql.SQL("UPDATE {t} SET created_at = created_at WHERE id = (SELECT min(id) FROM {t}) "
                                       "RETURNING updated_at > created_at").format(t=ident(BIG))).fetchone()[0]
    assert changed


def test_psql_f_on_a_used_database_builds_the_same_catalog_then_migrate_adopts_it(upgrade_url, db_url):
    out = subprocess.run(["psql", "-q", *psql_options("crm"), "-f", str(entry_path("crm")), upgrade_url],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert catalog_of(upgrade_url, ["crm"]) == catalog_of(db_url, ["crm"])
    assert all(not_backfilled(upgrade_url, t) == 0 for t in TABLES)
    assert not recorded(upgrade_url, ONLINE)

    out = ok(run_dbtool("migrate", "--database-url", upgrade_url))
    assert f"applied {ONLINE}" in out.stderr and "batches" not in out.stderr  # nothing left to fill
    assert validate(upgrade_url) == (0, [])


# Where a run can stop: after the first statement (or batch) of each file, and after the last file with the
# migration not yet recorded (a non-transactional migration is recorded after its files ran).
CUTS = [(i, True) for i in range(len(FILES))] + [(len(FILES), False)]


@pytest.mark.parametrize("cut,partial", CUTS,
                         ids=[f"in-{f.path.name}" for f in FILES] + ["after-every-file"])
def test_a_run_stopped_between_steps_is_reported_then_completed_by_the_next_migrate(upgrade_url, cut, partial):
    total = count(upgrade_url, BIG)
    run_by_hand(upgrade_url, FILES[:cut], FILES[cut] if partial else None)
    assert not recorded(upgrade_url, ONLINE)

    rc, findings = validate(upgrade_url)
    errors = [f for f in findings if f["severity"] == "error"]
    if cut == len(FILES):  # every step done: only the migration's record is missing
        assert rc == 0 and [(f["kind"], f["problem"]) for f in findings] == [("migration", "pending")]
    else:
        assert rc == 1 and errors
    reported = {f["object"] for f in findings if f["problem"] == "not_valid"}
    assert reported == not_valid_constraints(upgrade_url, "crm")  # a CHECK added NOT VALID shows as such
    done = filled(upgrade_url, BIG)

    out = ok(run_dbtool("migrate", "--database-url", upgrade_url))
    assert f"applied {ONLINE}" in out.stderr
    if 0 < done < total:  # a backfill stopped halfway goes on from there
        assert f"{total - done:,} rows in" in out.stderr, out.stderr
    assert validate(upgrade_url) == (0, [])
    assert all(not_backfilled(upgrade_url, t) == 0 for t in TABLES)


def test_kill_9_in_the_middle_of_a_backfill_loses_one_batch_and_the_next_run_goes_on(upgrade_url):
    total = count(upgrade_url, BIG)
    # The columns exist (a run that got that far): a row lock on BIG no longer holds up ALTER TABLE, which a
    # step already done does not ask for.
    run_by_hand(upgrade_url, FILES[:next(i for i, f in enumerate(FILES) if f.batch)])
    with psycopg.connect(upgrade_url, application_name="report-job") as blocker:
        # the row inserted last is in the last batch: the batches before it commit, that one waits
        blocker.execute(sql.SQL("SELECT 1 FROM {t} WHERE id = (SELECT max(id) FROM {t}) FOR UPDATE").format(
            t=ident(BIG)))
        proc = start_dbtool("migrate", "--database-url", upgrade_url)
        try:
            wait_until(upgrade_url, WAITING_MIGRATE, ("UPDATE%",))
        finally:
            proc.kill()
            killed = finish_dbtool(proc)
        assert killed.returncode == -signal.SIGKILL
        killed_run_gone(upgrade_url)
        blocker.rollback()
    done = filled(upgrade_url, BIG)
    assert 0 < done < total and done % SIZE == 0, (done, total)  # whole batches, each committed
    assert not recorded(upgrade_url, ONLINE)
    rc, findings = validate(upgrade_url)
    assert rc == 1 and {"kind": "column", "object": f"{BIG}.updated_at", "problem": "differs",
                        "attribute": "nullable"}.items() <= next(
        f for f in findings if f["object"] == f"{BIG}.updated_at").items()

    out = ok(run_dbtool("migrate", "--database-url", upgrade_url))
    assert f"{total - done:,} rows in" in out.stderr and f"applied {ONLINE}" in out.stderr, out.stderr
    assert validate(upgrade_url) == (0, [])
    assert not_backfilled(upgrade_url, BIG) == 0


def test_kill_9_while_validating_a_check_and_steps_already_done_take_no_lock(upgrade_url):
    """Stopped once a CHECK was added NOT VALID; then, with the application holding a lock that conflicts
    with ALTER TABLE (but not with VALIDATE's scan), a new run gets through every step already done
    without waiting, and waits only at VALIDATE: killed there, the CHECK stays NOT VALID until the next run."""
    with psycopg.connect(upgrade_url, autocommit=True) as conn:
        for f in FILES:
            for stmt in f.statements:
                conn.execute(stmt.text)
                left = not_valid_constraints(upgrade_url, "crm")
                if left:
                    break
            else:
                continue
            break
    (constraint,) = left
    schema, table, _ = constraint.split(".")
    with psycopg.connect(upgrade_url, application_name="report-job") as blocker:
        blocker.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(sql.Identifier(schema, table)))
        proc = start_dbtool("migrate", "--database-url", upgrade_url, "--ddl-lock-timeout", "60s")
        try:
            wait_until(upgrade_url, WAITING_MIGRATE, ("DO %VALIDATE CONSTRAINT%",))
        finally:
            proc.kill()
            killed = finish_dbtool(proc)
        assert killed.returncode == -signal.SIGKILL
        killed_run_gone(upgrade_url)
        blocker.rollback()
    assert not_valid_constraints(upgrade_url, "crm") == {constraint}
    rc, findings = validate(upgrade_url)
    assert rc == 1 and constraint in {f["object"] for f in findings if f["problem"] == "not_valid"}

    ok(run_dbtool("migrate", "--database-url", upgrade_url))
    assert validate(upgrade_url) == (0, [])


# -- migrate --lock-retries -------------------------------------------------------------------------------------
@pytest.fixture
def note_project(tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0090_cluster_note",
                  {"900_cluster_note.sql": "ALTER TABLE planning.store_clusters ADD COLUMN IF NOT EXISTS note text;\n"},
                  rollback="ALTER TABLE planning.store_clusters DROP COLUMN IF EXISTS note")
    return root


def _blocker(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, application_name="report-job")
    conn.execute("SELECT count(*) FROM planning.store_clusters")  # ACCESS SHARE until the transaction ends
    return conn


def test_lock_retries_try_a_transactional_migration_again_until_the_blocker_is_gone(db_url, note_project):
    with _blocker(db_url) as blocker:
        pid = blocker.info.backend_pid
        out = migrate_released_after_retries(db_url, blocker, 2, "--ddl-lock-timeout", "200ms", "--lock-retries",
                                             "6", env={"DBTOOL_ROOT": str(note_project)})
    ok(out)
    retries = [ln for ln in out.stderr.splitlines() if "failed on lock_timeout" in ln]
    assert retries and all(f"blocked by pid {pid} (report-job" in ln and "trying it again in" in ln
                           for ln in retries), out.stderr
    assert len(retries) == 2 and "(retry 1 of 6)" in retries[0] and "(retry 2 of 6)" in retries[1]
    assert "applied planning_0090_cluster_note" in out.stderr
    assert one(db_url, "SELECT count(*) FROM _yoyo_log WHERE migration_id = 'planning_0090_cluster_note'") == 1


def test_without_retries_a_lock_timeout_fails_at_once_naming_the_blocker(db_url, note_project):
    with _blocker(db_url) as blocker:
        out = run_dbtool("migrate", "--database-url", db_url, "--ddl-lock-timeout", "200ms",
                         env={"DBTOOL_ROOT": str(note_project)})
        line = one_line_error(out)
        assert "canceling statement due to lock timeout" in line
        assert f"blocked by pid {blocker.info.backend_pid} (report-job" in line
        assert "retry" not in out.stderr

        out = run_dbtool("migrate", "--database-url", db_url, "--ddl-lock-timeout", "200ms",
                         env={"DBTOOL_ROOT": str(note_project), "DBTOOL_LOCK_RETRIES": "1"})
        line = one_line_error(out)
        assert f"blocked by pid {blocker.info.backend_pid} (report-job" in line and \
            line.endswith("gave up after 1 retry (--lock-retries)")
        assert "(retry 1 of 1)" in out.stderr
    assert not recorded(db_url, "planning_0090_cluster_note")


def test_lock_retries_resume_a_non_transactional_migration(upgrade_url):
    last = TABLES[-1]
    with psycopg.connect(upgrade_url, application_name="report-job") as blocker:
        blocker.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(last)))
        out = migrate_released_after_retries(upgrade_url, blocker, 1, "--ddl-lock-timeout", "200ms",
                                             "--lock-retries", "8")
    ok(out)
    assert f"{ONLINE} failed on lock_timeout, blocked by pid" in out.stderr
    assert "resuming it (its files are idempotent)" in out.stderr
    assert validate(upgrade_url) == (0, [])
    assert all(not_backfilled(upgrade_url, t) == 0 for t in TABLES)


@pytest.mark.parametrize("args,env", [(["--lock-retries", "-1"], {}), (["--lock-retries", "two"], {}),
                                      ([], {"DBTOOL_LOCK_RETRIES": "x"})])
def test_bad_lock_retries_exit_2(args, env):
    out = run_dbtool("migrate", *args, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--lock-retries" in out.stderr and "give a whole number" in out.stderr


def test_retry_delays_grow_with_jitter_and_stay_bounded():
    rnd = random.Random(14)
    for attempt in range(1, 12):
        full = min(migrate_lib.RETRY_CAP, migrate_lib.RETRY_BASE * 2 ** (attempt - 1))
        delays = {migrate_lib.retry_delay(attempt, rnd) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays) and len(delays) > 1


# -- the `-- batch:` directive ----------------------------------------------------------------------------------
BATCHED = "UPDATE s.t SET x = 1 WHERE id IN (SELECT id FROM s.t LIMIT " \
          "nullif(current_setting('dbtool.batch_rows', true), '')::integer);\n"


@pytest.mark.parametrize("text,why", [
    ("-- batch: 100\nUPDATE s.t SET x = 1 WHERE x IS NULL;\n", "limits itself with LIMIT nullif(current_setting"),
    ("-- batch: 100\n" + BATCHED + BATCHED, "holds exactly one statement, found 2"),
    ("-- batch: 100\n-- transactional: false\n" + BATCHED, "remove '-- transactional: false'"),
    ("-- batch: 0\n" + BATCHED, "bad directive '-- batch: 0': give the rows per batch"),
    ("-- batch: lots\n" + BATCHED, "bad directive '-- batch: lots'"),
    ("-- Batch: 10\n" + BATCHED, None),
])
def test_batch_files_are_checked_before_anything_runs(tmp_path, text, why):
    path = tmp_path / "900_x.sql"
    path.write_text(text)
    if why is None:
        assert load_file(path, "m").batch == 10
        return
    with pytest.raises(MigrationError) as err:
        load_file(path, "m")
    assert why in str(err.value)


def test_a_batch_file_needs_a_non_transactional_migration_and_a_limited_statement(db_url, tmp_path):
    root = copy_project(tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'A'), ('b', 'B')")
    add_migration(root, "planning", "planning_0090_fill", {"900_fill.sql": (
        "-- batch: 1\nUPDATE planning.store_clusters SET cluster_name = lower(cluster_name) "
        "WHERE current_setting('dbtool.batch_rows', true) IS NOT NULL;\n")})
    env = {"DBTOOL_ROOT": str(root)}
    line = one_line_error(run_dbtool("migrate", "--database-url", db_url, env=env))
    assert "marked '-- batch: 1'" in line and "must set __transactional__ = False" in line

    (root / "migrations" / "planning" / "planning_0090_fill.py").unlink()
    add_migration(root, "planning", "planning_0090_fill", {"900_fill.sql": (
        "-- batch: 1\nUPDATE planning.store_clusters SET cluster_name = lower(cluster_name) "
        "WHERE current_setting('dbtool.batch_rows', true) IS NOT NULL;\n")}, transactional=False)
    line = one_line_error(run_dbtool("migrate", "--database-url", db_url, env=env))
    assert "sql/planning/900_fill.sql:2: one batch changed 2 rows, more than '-- batch: 1'" in line
    assert one(db_url, "SELECT string_agg(cluster_name, ',' ORDER BY 1) FROM planning.store_clusters") == "A,B"


# -- the foreign key and unique constraint patterns (tests/online_corpus/) ------------------------------------------
TARGETS, ONLINE_DEMO = "planning_0090_store_targets", "planning_0091_store_keys"
DEMO_FILES = ["910_store_targets_store_id_fkey.sql", "920_stores_store_name_key_idx.sql",
              "930_stores_store_name_key.sql"]


@pytest.fixture
def demo(db_url, tmp_path):
    """A copy of the project with the corpus as two planning migrations, the first applied, and rows."""
    root = copy_project(tmp_path)
    read = {p.name: p.read_text() for p in CORPUS.glob("*.sql")}
    add_migration(root, "planning", TARGETS, {"900_store_targets.sql": read["900_store_targets.sql"]},
                  rollback="DROP TABLE IF EXISTS planning.store_targets")
    add_migration(root, "planning", ONLINE_DEMO, {name: read[name] for name in DEMO_FILES}, transactional=False,
                  rollback="ALTER TABLE planning.stores DROP CONSTRAINT IF EXISTS stores_store_name_key; "
                           "ALTER TABLE planning.store_targets DROP CONSTRAINT IF EXISTS store_targets_store_id_fkey")
    env = {"DBTOOL_ROOT": str(root)}
    ok(run_dbtool("migrate", "--database-url", db_url, "--to", TARGETS, env=env))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.stores (store_id, store_name, store_size_sqft, location_tier, "
                     "median_income, store_format, region, avg_weekly_sales_12mo) SELECT 'S' || g, 'Store ' || g, "
                     "1000, 'A', 1, 'mall', 'North', 1 FROM generate_series(1, 50) g")
        conn.execute("INSERT INTO planning.store_targets (store_id, week_start_date, target_units) "
                     "SELECT 'S' || (g % 50 + 1), date '2025-01-06' + 7 * (g / 50), g FROM generate_series(1, 500) g")
    return root, env


def test_demo_lints_clean_and_the_naive_forms_do_not(db_url, demo, tmp_path):
    root, env = demo
    out = run_dbtool("lint", "--pending", "--database-url", db_url, "--format", "json", env=env)
    doc = json.loads(out.stdout)
    assert out.returncode == 0, [(f["file"], f["rule"]) for f in doc["findings"]]
    assert sorted(Path(f["file"]).name for f in doc["files"]) == DEMO_FILES

    naive = tmp_path / "naive.sql"
    naive.write_text("ALTER TABLE planning.store_targets ADD CONSTRAINT store_targets_store_id_fkey\n"
                     "    FOREIGN KEY (store_id) REFERENCES planning.stores (store_id);\n"
                     "ALTER TABLE planning.stores ADD CONSTRAINT stores_store_name_key UNIQUE (store_name);\n")
    out = run_dbtool("lint", str(naive), "--database-url", db_url, "--format", "json", env=env)
    assert out.returncode == 1
    rules = {f["rule"] for f in json.loads(out.stdout)["findings"]}
    assert {"add-foreign-key-valid", "add-unique-without-index"} <= rules


def test_demo_foreign_key_left_not_valid_is_reported_then_validated(db_url, demo):
    root, env = demo
    fkey = load_file(root / "sql" / "planning" / DEMO_FILES[0], ONLINE_DEMO)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(fkey.statements[0].text)  # added NOT VALID; the run stopped before VALIDATE
    rc, findings = validate(db_url, "--from-sql", env=env)
    problems = {(f["object"], f["problem"]) for f in findings}
    assert rc == 1 and ("planning.store_targets.store_targets_store_id_fkey", "not_valid") in problems
    assert ("planning.stores.stores_store_name_key", "missing") in problems

    out = ok(run_dbtool("migrate", "--database-url", db_url, env=env))
    assert f"applied {ONLINE_DEMO}" in out.stderr
    assert validate(db_url, "--from-sql", env=env) == (0, [])
    assert not_valid_constraints(db_url, "planning") == set()


def test_demo_unique_index_killed_while_building_is_rebuilt_then_made_the_constraint(db_url, demo):
    root, env = demo
    fkey = load_file(root / "sql" / "planning" / DEMO_FILES[0], ONLINE_DEMO)
    run_by_hand(db_url, [fkey])  # done: the next run passes it without a lock on planning.stores
    with psycopg.connect(db_url, application_name="report-job") as writer:
        writer.execute("LOCK TABLE planning.stores IN ROW EXCLUSIVE MODE")  # an open writing transaction
        proc = start_dbtool("migrate", "--database-url", db_url, env=env)
        try:  # CREATE INDEX CONCURRENTLY waits for the writers it must outlive
            wait_until(db_url, WAITING_MIGRATE, ("CREATE UNIQUE INDEX CONCURRENTLY%",))
        finally:
            proc.kill()
            killed = finish_dbtool(proc)
        assert killed.returncode == -signal.SIGKILL
        killed_run_gone(db_url)
        rc, findings = validate(db_url, "--from-sql", env=env)
        assert rc == 1 and {"invalid", "not_ready"} & {
            f["problem"] for f in findings if f["object"] == "planning.stores.stores_store_name_key"}, findings
        writer.rollback()

    out = ok(run_dbtool("migrate", "--database-url", db_url, env=env))
    assert "dropped the INVALID index planning.stores_store_name_key" in out.stderr, out.stderr
    assert validate(db_url, "--from-sql", env=env) == (0, [])
    assert one(db_url, "SELECT contype FROM pg_constraint WHERE conname = 'stores_store_name_key'") == "u"


def test_corpus_is_what_the_tests_copy():
    assert sorted(p.name for p in CORPUS.glob("*.sql")) == ["900_store_targets.sql", *DEMO_FILES]
