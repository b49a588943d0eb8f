"""`dbtool lint --pending`, and files linted in their migration: what ran before them in the same
transaction, which tables the pending migrations create, whether the migration is transactional."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import add_migration, copy_project, run_dbtool


@pytest.fixture
def root(tmp_path) -> Path:
    return copy_project(tmp_path / "co")


def lint(root: Path, *args: str) -> tuple[int, dict, str]:
    out = run_dbtool("lint", "--format", "json", *args, env={"DBTOOL_ROOT": str(root)})
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, (json.loads(out.stdout) if out.stdout else {}), out.stderr


def found(doc: dict) -> list[tuple[str, int, str]]:
    return [(f["file"], f["line"], f["rule"]) for f in doc["findings"]]


def test_pending_lints_only_the_migrations_not_applied(root, db_url):
    add_migration(root, "crm", "crm_0901_loyalty", {"901_loyalty.sql": """\
CREATE TABLE crm.loyalty (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_code varchar(255) NOT NULL REFERENCES crm.customer (customer_code)
);
CREATE INDEX loyalty_customer_code_idx ON crm.loyalty (customer_code);
CREATE INDEX customer_first_name_idx ON crm.customer (first_name);
"""})
    # A later pending migration: crm.loyalty is not in the database yet, so it is new there too.
    add_migration(root, "crm", "crm_0902_loyalty_points", {"902_loyalty_points.sql": """\
ALTER TABLE crm.loyalty ADD COLUMN points integer NOT NULL DEFAULT 0;
CREATE INDEX loyalty_points_idx ON crm.loyalty (points);
"""})
    code, doc, err = lint(root, "--pending", "--database-url", db_url)
    assert code == 1, err
    assert "lint: 2 pending migration(s), 2 file(s)" in err
    assert [f["file"] for f in doc["files"]] == ["sql/crm/901_loyalty.sql", "sql/crm/902_loyalty_points.sql"]
    assert [f["migration"] for f in doc["files"]] == ["crm_0901_loyalty", "crm_0902_loyalty_points"]
    assert found(doc) == [("sql/crm/901_loyalty.sql", 6, "create-index-not-concurrent")]
    assert doc["server"] is not None and doc["catalog"].startswith("the live catalog of")

    # --module: only that module's pending migrations; nothing pending: exit 0.
    code, doc, err = lint(root, "--pending", "--module", "planning", "--database-url", db_url)
    assert code == 0 and doc["files"] == [] and "lint: 0 pending migration(s), 0 file(s)" in err


def test_a_file_is_linted_in_its_migration(root, db_url):
    """ACCESS EXCLUSIVE taken in one file is held through the next file of the same migration; the finding
    is the statement that takes it. Linting the later file alone reports nothing of it."""
    add_migration(root, "crm", "crm_0901_segment", {
        "901_segment.sql": "ALTER TABLE crm.customer ADD COLUMN segment text;\n",
        "902_segment_fill.sql": "-- the backfill\nUPDATE crm.customer SET segment = 'unknown';\n",
    })
    code, doc, _ = lint(root, "--pending", "--database-url", db_url)
    assert code == 1
    assert found(doc) == [("sql/crm/901_segment.sql", 1, "access-exclusive-held")]
    assert "sql/crm/902_segment_fill.sql:2 UPDATE crm.customer" in doc["findings"][0]["message"]
    code, doc, _ = lint(root, str(root / "sql/crm/902_segment_fill.sql"))
    assert code == 0 and doc["files"][0]["migration"] == "crm_0901_segment"


def test_transactional_or_not_is_the_migration_s(root):
    """Without a database: the snapshot gives crm.customer; the migration says whether it runs in a
    transaction (CONCURRENTLY fails there), and a `-- transactional: false` file needs a migration that is not."""
    concurrently = "-- transactional: false\nCREATE INDEX CONCURRENTLY c_idx ON crm.customer (first_name);\n"
    in_tx = "CREATE INDEX CONCURRENTLY b_idx ON crm.customer (email);\n"
    add_migration(root, "crm", "crm_0901_tx", {"901_tx.sql": in_tx})
    add_migration(root, "crm", "crm_0902_no_tx", {"902_no_tx.sql": concurrently}, transactional=False)
    add_migration(root, "crm", "crm_0903_mixed", {"903_mixed.sql": concurrently})
    code, doc, _ = lint(root, str(root / "sql/crm"))
    assert code == 1
    assert found(doc) == [("sql/crm/901_tx.sql", 1, "concurrently-in-transaction"),
                          ("sql/crm/903_mixed.sql", 1, "bad-directive"),
                          ("sql/crm/903_mixed.sql", 2, "concurrently-in-transaction")]
    assert "migration crm_0901_tx runs in one" in doc["findings"][0]["message"]
    files = {f["file"]: f for f in doc["files"]}
    assert files["sql/crm/902_no_tx.sql"]["transactional"] is False
    assert files["sql/crm/902_no_tx.sql"]["lock_timeout"] == "0"  # dbtool's, around a non-transactional file
    assert files["sql/crm/040_product.sql"]["migration"] == "crm_0001_initial"


def test_psql_meta_commands_in_a_migration_s_file(root):
    (root / "sql/crm/901_part.sql").write_text("COMMENT ON TABLE crm.customer IS 'Customers.';\n")
    add_migration(root, "crm", "crm_0901_meta", {"902_meta.sql": "\\ir 901_part.sql\nSELECT 1;\n"})
    code, doc, _ = lint(root, str(root / "sql/crm/902_meta.sql"))
    assert code == 1
    assert found(doc) == [("sql/crm/902_meta.sql", 1, "psql-meta-command")]
    assert "`\\ir 901_part.sql` is psql's" in doc["findings"][0]["message"]


def test_pending_cannot_connect(root):
    out = run_dbtool("lint", "--pending", "--database-url", "postgresql://x@/db?host=/nonexistent",
                     env={"DBTOOL_ROOT": str(root)})
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("dbtool: cannot connect")


def test_a_foreign_key_s_index_may_come_in_the_next_migration(root, db_url):
    """On an existing table the index is built CONCURRENTLY, so in a migration of its own: a later migration
    of the same run covers the foreign key."""
    fk = ("ALTER TABLE crm.contact_event ADD CONSTRAINT contact_event_campaign_fkey FOREIGN KEY (campaign) "
          "REFERENCES crm.product (product_key) NOT VALID;\n")
    add_migration(root, "crm", "crm_0901_fk", {"901_fk.sql": fk})
    code, doc, _ = lint(root, "--pending", "--database-url", db_url)
    assert found(doc) == [("sql/crm/901_fk.sql", 1, "foreign-key-without-index")]
    add_migration(root, "crm", "crm_0902_fk_index", {"902_fk_index.sql": (
        "-- transactional: false\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS contact_event_campaign_idx ON crm.contact_event (campaign);\n")},
        transactional=False)
    code, doc, _ = lint(root, "--pending", "--database-url", db_url)
    assert code == 0, found(doc)
