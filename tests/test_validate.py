"""Issue 3: `dbtool validate` finds every kind of drift, exactly, with pipeline exit codes."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import psycopg
import pytest

from dbtool.catalog import expected as expected_lib
from dbtool.config import Target
from dbtool.paths import ROOT, modules
from helpers import add_migration, copy_project, run_dbtool


def validate(url: str, *args: str, env: dict | None = None):
    out = run_dbtool("validate", "--database-url", url, "--format", "json", *args, env=env)
    assert "Traceback" not in out.stderr
    return out.returncode, (json.loads(out.stdout) if out.stdout else None), out


def drift(url: str, ddl: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)


def test_freshly_migrated_database_validates_clean(db_url):
    rc, report, out = validate(db_url)
    assert rc == 0, out.stdout
    assert report["findings"] == [] and report["ok"] is True
    assert report["summary"]["checked"] > 600


DRIFTS = [
    ("dropped table", "DROP TABLE crm.audit_item", "table", "crm.audit_item", "missing", None),
    ("dropped column", "ALTER TABLE crm.customer DROP COLUMN batch_id", "column", "crm.customer.batch_id",
     "missing", None),
    ("changed type", "ALTER TABLE planning.stores ALTER COLUMN store_size_sqft TYPE bigint", "column",
     "planning.stores.store_size_sqft", "differs", "type"),
    ("changed length", "ALTER TABLE planning.stores ALTER COLUMN store_name TYPE varchar(200)", "column",
     "planning.stores.store_name", "differs", "type"),
    ("dropped not null", "ALTER TABLE planning.stores ALTER COLUMN region DROP NOT NULL", "column",
     "planning.stores.region", "differs", "nullable"),
    ("changed default", "ALTER TABLE chatbot.sessions ALTER COLUMN turn_id SET DEFAULT 1", "column",
     "chatbot.sessions.turn_id", "differs", "default"),
    ("dropped index", "DROP INDEX planning.idx_weekly_actuals_store", "index",
     "planning.weekly_actuals.idx_weekly_actuals_store", "missing", None),
    ("index on other columns", "DROP INDEX planning.idx_weekly_actuals_store; "
     "CREATE INDEX idx_weekly_actuals_store ON planning.weekly_actuals (category_id)", "index",
     "planning.weekly_actuals.idx_weekly_actuals_store", "differs", "definition"),
    ("invalid index", "UPDATE pg_index SET indisvalid = false "
     "WHERE indexrelid = 'planning.idx_weekly_actuals_date'::regclass", "index",
     "planning.weekly_actuals.idx_weekly_actuals_date", "invalid", None),
    ("dropped unique", "ALTER TABLE infra.customers DROP CONSTRAINT customers_email_key", "constraint",
     "infra.customers.customers_email_key", "missing", None),
    ("dropped check", "ALTER TABLE crm.reco_item DROP CONSTRAINT reco_item_rank_check", "constraint",
     "crm.reco_item.reco_item_rank_check", "missing", None),
    ("changed check", "ALTER TABLE crm.reco_item DROP CONSTRAINT reco_item_rank_check; ALTER TABLE crm.reco_item "
     "ADD CONSTRAINT reco_item_rank_check CHECK (rank BETWEEN 1 AND 5)", "constraint",
     "crm.reco_item.reco_item_rank_check", "differs", "definition"),
    ("not valid check", "ALTER TABLE crm.reco_item DROP CONSTRAINT reco_item_rank_check; ALTER TABLE crm.reco_item "
     "ADD CONSTRAINT reco_item_rank_check CHECK (rank BETWEEN 1 AND 3) NOT VALID", "constraint",
     "crm.reco_item.reco_item_rank_check", "not_valid", None),
    ("dropped fk", "ALTER TABLE planning.weekly_actuals DROP CONSTRAINT weekly_actuals_workflow_id_fkey",
     "constraint", "planning.weekly_actuals.weekly_actuals_workflow_id_fkey", "missing", None),
    ("fk on delete", "ALTER TABLE planning.weekly_actuals DROP CONSTRAINT weekly_actuals_workflow_id_fkey; "
     "ALTER TABLE planning.weekly_actuals ADD CONSTRAINT weekly_actuals_workflow_id_fkey FOREIGN KEY "
     "(workflow_id) REFERENCES planning.workflows (workflow_id) ON DELETE RESTRICT", "constraint",
     "planning.weekly_actuals.weekly_actuals_workflow_id_fkey", "differs", "on_delete"),
    ("missing enum label", "DELETE FROM pg_enum WHERE enumlabel = 'REJECTED' "
     "AND enumtypid = 'infra.approval_status'::regtype", "enum", "infra.approval_status", "differs", "labels"),
    ("extra enum label", "ALTER TYPE infra.approval_status ADD VALUE 'ESCALATED'", "enum",
     "infra.approval_status", "differs", "labels"),
    ("dropped trigger", "DROP TRIGGER customers_set_updated_at ON infra.customers", "trigger",
     "infra.customers.customers_set_updated_at", "missing", None),
    ("changed function", "CREATE OR REPLACE FUNCTION infra.set_updated_at() RETURNS trigger LANGUAGE plpgsql "
     "AS $$ BEGIN RETURN NEW; END $$", "function", "infra.set_updated_at()", "differs", "source"),
]


@pytest.mark.parametrize("ddl,kind,obj,problem,attribute", [d[1:] for d in DRIFTS], ids=[d[0] for d in DRIFTS])
def test_each_kind_of_drift_is_an_error_naming_the_object(db_url, ddl, kind, obj, problem, attribute):
    drift(db_url, ddl)
    rc, report, out = validate(db_url)
    assert rc == 1, out.stdout
    hits = [f for f in report["findings"] if f["object"] == obj and f["problem"] == problem]
    assert hits, report["findings"]
    assert hits[0]["kind"] == kind and hits[0]["severity"] == "error"
    assert hits[0]["attribute"] == attribute


def test_fk_action_difference_says_expected_and_found(db_url):
    drift(db_url, DRIFTS[14][1])
    out = run_dbtool("validate", "--database-url", db_url, "--module", "planning")
    assert out.returncode == 1
    assert ("differs constraint planning.weekly_actuals.weekly_actuals_workflow_id_fkey on_delete: "
            "expected CASCADE, found RESTRICT") in out.stdout


def test_missing_enum_label_is_named(db_url):
    drift(db_url, DRIFTS[15][1])
    rc, report, _ = validate(db_url, "--module", "infra")
    assert rc == 1 and len(report["findings"]) == 1
    assert report["findings"][0]["message"].endswith("(missing labels REJECTED)")


def test_index_left_invalid_by_failed_concurrent_build_is_an_error(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO planning.store_clusters (cluster_id, cluster_name) VALUES ('a', 'x'), ('b', 'x')")
        with pytest.raises(psycopg.errors.UniqueViolation,
                           match='could not create unique index "store_clusters_name_uq"'):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY store_clusters_name_uq "
                         "ON planning.store_clusters (cluster_name)")
    rc, report, _ = validate(db_url, "--module", "planning")
    assert rc == 1
    problems = {(f["object"], f["problem"]) for f in report["findings"]}
    assert ("planning.store_clusters.store_clusters_name_uq", "invalid") in problems


@pytest.mark.parametrize("ddl,obj", [
    ("CREATE TABLE crm.scratch (id int)", "crm.scratch"),
    ("CREATE INDEX extra_cepage_idx ON crm.product (cepage)", "crm.product.extra_cepage_idx"),
])
def test_extra_objects_are_warnings_and_errors_when_strict(db_url, ddl, obj):
    drift(db_url, ddl)
    rc, report, _ = validate(db_url)
    assert rc == 0
    assert [(f["object"], f["severity"], f["problem"]) for f in report["findings"]] == [(obj, "warning", "extra")]
    rc, report, _ = validate(db_url, "--strict")
    assert rc == 1 and report["findings"][0]["severity"] == "error"


def test_edited_applied_migration_file_is_an_error(db_url, tmp_path):
    copy_project(tmp_path)
    edited = tmp_path / "sql" / "crm" / "040_product.sql"
    edited.write_text(edited.read_text() + "\n-- a later edit\n")
    rc, report, _ = validate(db_url, env={"DBTOOL_ROOT": str(tmp_path)})
    assert rc == 1
    assert [(f["object"], f["problem"]) for f in report["findings"]] == [("sql/crm/040_product.sql", "edited")]


def test_line_endings_and_bom_do_not_count_as_edits(db_url, tmp_path):
    copy_project(tmp_path)
    f = tmp_path / "sql" / "crm" / "040_product.sql"
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes().replace(b"\n", b"\r\n"))
    rc, report, _ = validate(db_url, env={"DBTOOL_ROOT": str(tmp_path)})
    assert rc == 0, report["findings"]


def test_applied_migration_missing_from_disk_is_an_error(db_url, tmp_path):
    copy_project(tmp_path)
    (tmp_path / "migrations" / "infra" / "infra_0001_initial.py").unlink()
    (tmp_path / "migrations" / "infra" / "infra_0001_renamed.py").write_text(
        (ROOT / "migrations" / "infra" / "infra_0001_initial.py").read_text())
    later = tmp_path / "migrations" / "infra" / "infra_0002_privileges.py"  # depends on the renamed one
    later.write_text(later.read_text().replace('"infra_0001_initial"', '"infra_0001_renamed"'))
    rc, report, _ = validate(db_url, "--module", "infra", env={"DBTOOL_ROOT": str(tmp_path)})
    assert rc == 1
    found = {(f["kind"], f["object"], f["problem"]) for f in report["findings"]}
    assert ("migration", "infra_0001_initial", "file_missing") in found
    assert ("migration", "infra_0001_renamed", "pending") in found


def test_validate_needs_only_connect_and_usage(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute("DROP ROLE IF EXISTS dbtool_reader")
        conn.execute("CREATE ROLE dbtool_reader LOGIN NOCREATEDB NOCREATEROLE")
        conn.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM PUBLIC')
        conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO dbtool_reader')
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for schema in modules():
            conn.execute(f"GRANT {schema}_ro TO dbtool_reader")  # membership, not grants of its own
    try:
        reader_url = db_url.replace("postgresql://postgres@", "postgresql://dbtool_reader@")
        rc, report, out = validate(reader_url)
        assert rc == 0, out.stderr + out.stdout
        assert report["findings"] == []
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY dbtool_reader")
            conn.execute("DROP ROLE dbtool_reader")


def test_json_output_has_the_documented_shape(db_url):
    drift(db_url, "ALTER TABLE planning.stores ALTER COLUMN store_name TYPE varchar(200)")
    _rc, report, _ = validate(db_url)
    assert report["format"] == "dbtool.validate/1"
    assert set(report) == {"format", "database", "modules", "strict", "ok", "summary", "findings"}
    assert set(report["summary"]) == {"errors", "warnings", "info", "checked", "seconds"}
    f = report["findings"][0]
    assert {"severity", "kind", "object", "problem", "attribute", "expected", "found", "message"} <= set(f)
    assert (f["expected"], f["found"]) == ("character varying(100)", "character varying(200)")


def test_junit_output_has_one_case_per_checked_object(db_url):
    drift(db_url, "DROP INDEX planning.idx_weekly_actuals_store")
    out = run_dbtool("validate", "--database-url", db_url, "--format", "junit", "--module", "planning")
    assert out.returncode == 1
    root = ET.fromstring(out.stdout)
    cases = root.findall(".//testcase")
    failures = root.findall(".//testcase/failure")
    assert int(root.get("tests")) == len(cases) > 50
    assert len(failures) == int(root.get("failures")) == 1
    assert "idx_weekly_actuals_store" in failures[0].get("message")


def test_text_output_groups_by_object_and_says_drift(db_url):
    drift(db_url, "ALTER TABLE crm.customer DROP COLUMN batch_id; CREATE TABLE crm.scratch (id int)")
    out = run_dbtool("validate", "--database-url", db_url, "--module", "crm")
    lines = out.stdout.splitlines()
    assert out.returncode == 1
    assert "crm.customer" in lines and "crm.scratch" in lines
    assert any(ln.strip().startswith("error") and "missing column crm.customer.batch_id" in ln for ln in lines)
    assert lines[-1].startswith("DRIFT: 2 error(s), 1 warning(s)")  # the column and its index
    assert "\033[" not in out.stdout  # no colour when not a terminal


def test_unreachable_database_exits_3_with_one_line(tmp_path):
    out = run_dbtool("validate", "--database-url", f"postgresql://postgres:s3cret@/x?host={tmp_path}&port=1")
    assert out.returncode == 3
    assert out.stderr.strip().splitlines()[-1].startswith("dbtool: cannot connect to")
    assert "s3cret" not in out.stderr + out.stdout and "Traceback" not in out.stderr


def test_missing_database_exits_3_and_says_so(db_url):
    out = run_dbtool("validate", "--database-url", db_url.replace("/" + db_url.split("/")[3].split("?")[0] + "?",
                                                                  "/no_such_db?"))
    assert out.returncode == 3
    assert 'database "no_such_db" does not exist' in out.stderr


def test_unknown_module_is_a_usage_error():
    out = run_dbtool("validate", "--module", "nope", "--database-url", "postgresql://localhost/x")
    assert out.returncode == 2 and "unknown module nope" in out.stderr


EXTRA_TABLE = "CREATE TABLE planning.from_sql_only (id integer PRIMARY KEY, note text NOT NULL);\n"


def findings_of(report: dict) -> list[tuple]:
    return [(f["severity"], f["kind"], f["object"], f["problem"]) for f in report["findings"]]


def test_from_sql_builds_the_expectation_on_the_fly(db_url, tmp_path):
    """The project copy's sql/ has a table the committed snapshot lacks: only --from-sql expects it."""
    root = copy_project(tmp_path)
    add_migration(root, "planning", "planning_0002_from_sql_only", {"100_from_sql_only.sql": EXTRA_TABLE},
                  rollback="DROP TABLE planning.from_sql_only")
    env = {"DBTOOL_ROOT": str(root)}
    pending = ("warning", "migration", "planning_0002_from_sql_only", "pending")

    # Not applied yet: the snapshot does not know the table; sql/ says it is missing.
    rc, report, out = validate(db_url, "--module", "planning", env=env)
    assert (rc, findings_of(report)) == (0, [pending]), out.stderr
    rc, report, out = validate(db_url, "--from-sql", "--module", "planning", env=env)
    assert (rc, findings_of(report)) == (1, [("error", "table", "planning.from_sql_only", "missing"), pending]), \
        out.stderr

    applied = run_dbtool("migrate", "--module", "planning", "--database-url", db_url, env=env)
    assert applied.returncode == 0, applied.stderr

    # Applied: an extra table for the snapshot (an error under --strict); exactly what sql/ describes.
    rc, report, out = validate(db_url, "--module", "planning", "--strict", env=env)
    assert (rc, findings_of(report)) == (1, [("error", "table", "planning.from_sql_only", "extra")]), out.stderr
    rc, report, out = validate(db_url, "--from-sql", "--module", "planning", "--strict", env=env)
    assert (rc, report["findings"]) == (0, []), out.stderr


@pytest.mark.parametrize("module", ["crm", "infra", "planning", "chatbot"])
def test_committed_snapshot_is_current(module, pg_cluster):
    server = Target(pg_cluster.conninfo("postgres"), "test")
    built = expected_lib.build(server, [module])[module]
    committed = expected_lib.snapshot_path(module).read_text(encoding="utf-8")
    assert expected_lib.dumps(module, built) == committed, "sql/ changed: run `make snapshot` and review the diff"


def test_duckdb_file_is_validated_in_the_same_report(db_url, tmp_path):
    import duckdb

    from dbtool.analytics.db import init

    path = tmp_path / "a.duckdb"
    init(path)
    rc, report, out = validate(db_url, "--duckdb", str(path))
    assert rc == 0, out.stdout
    assert "duckdb" in report["modules"]
    with duckdb.connect(str(path)) as duck:
        table = duck.execute("SELECT table_name FROM duckdb_tables() WHERE NOT internal AND table_name "
                             "NOT LIKE '%state%' AND table_name NOT LIKE '%version%' ORDER BY 1 LIMIT 1").fetchone()[0]
        duck.execute(f"DROP TABLE {table}")
    rc, report, _ = validate(db_url, "--duckdb", str(path))
    assert rc == 1
    assert ("table", f"duckdb.{table}", "missing") in {(f["kind"], f["object"], f["problem"])
                                                       for f in report["findings"]}


def test_a_renamed_index_is_one_warning_not_missing_plus_extra(db_url):
    drift(db_url, "ALTER INDEX planning.idx_weekly_actuals_store RENAME TO weekly_actuals_store_id_idx")
    rc, report, _ = validate(db_url, "--module", "planning")
    assert rc == 0
    assert [(f["object"], f["problem"], f["severity"], f["expected"], f["found"]) for f in report["findings"]] == [
        ("planning.weekly_actuals.idx_weekly_actuals_store", "renamed", "warning", "idx_weekly_actuals_store",
         "weekly_actuals_store_id_idx")]
    rc, report, _ = validate(db_url, "--module", "planning", "--strict")
    assert rc == 1
