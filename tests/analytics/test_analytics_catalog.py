"""The DuckDB catalog: a file built from sql/duckdb/ validates clean; drift is found by validate's own diff."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dbtool.analytics import db
from dbtool.analytics.catalog import expected_duckdb_catalog, read_duckdb_catalog
from dbtool.catalog.diff import diff
from dbtool.catalog.validate import duckdb_catalogs


@pytest.fixture(scope="module")
def expected():
    return expected_duckdb_catalog()


@pytest.fixture
def path(tmp_path) -> Path:
    """A DuckDB file built by `dbtool analytics init`."""
    p = tmp_path / "live.duckdb"
    db.init(p)
    return p


def findings(path: Path) -> list[tuple]:
    """What `dbtool validate --duckdb path` finds: (severity, kind, object, problem, attribute), in its order."""
    return [(f.severity, f.kind, f.object, f.problem, f.attribute) for f in diff(*duckdb_catalogs(path))]


def change(path: Path, *statements: str) -> None:
    with duckdb.connect(str(path)) as conn:
        for stmt in statements:
            conn.execute(stmt)


def test_expected_catalog_describes_the_spec_tables(expected):
    spec_tables = {"duckdb.conversation_context", "duckdb.message_history", "duckdb.message_embeddings"}
    assert spec_tables <= set(expected.objects("table"))
    columns = expected.objects("column")
    assert columns["duckdb.message_embeddings.embedding"].type == "FLOAT[384]"
    assert columns["duckdb.conversation_context.key_entities"].type == "JSON"
    assert expected.objects("index")["duckdb.message_history.message_history_phone_number_created_at_idx"] \
        .definition == "message_history(phone_number, created_at)"


def test_clean_file_equals_expected_and_has_no_findings(expected, path):
    with duckdb.connect(str(path), read_only=True) as conn:
        assert read_duckdb_catalog(conn) == expected
    assert findings(path) == []


def drifted(tmp_path, old_ddl: str) -> Path:
    """A file where an older definition of a table came first: init's IF NOT EXISTS keeps it (the realistic
    drift; DuckDB refuses ALTER on tables that have indexes)."""
    path = tmp_path / "drifted.duckdb"
    change(path, old_ddl)
    db.init(path)
    return path


def spec_ddl(table: str) -> str:
    """The table's CREATE statement as sql/duckdb/ has it (DuckDB prints it back)."""
    with duckdb.connect(":memory:") as conn:
        db.apply_schema(conn)
        return conn.execute("SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]


def test_dropped_column(tmp_path):
    ddl = spec_ddl("conversation_context").replace("summary VARCHAR, ", "")
    assert "summary" not in ddl
    found = findings(drifted(tmp_path, ddl))
    # The one finding: the missing column. The later columns kept their order among the columns both sides
    # have, so none is reported as moved (their ordinal positions shifted, which the missing column explains).
    assert found == [("error", "column", "duckdb.conversation_context.summary", "missing", None)]


def test_changed_type(tmp_path):
    path = drifted(tmp_path, spec_ddl("message_history").replace("confidence DOUBLE", "confidence FLOAT"))
    assert findings(path) == [("error", "column", "duckdb.message_history.confidence", "differs", "type")]
    (only,) = diff(*duckdb_catalogs(path))
    assert (only.expected, only.found) == ("DOUBLE", "FLOAT")


def test_missing_table(path):
    change(path, "DROP TABLE message_embeddings")
    # One error for the table; its columns and index are implied, not reported again.
    assert findings(path) == [("error", "table", "duckdb.message_embeddings", "missing", None)]


def test_index_on_other_columns_differs(path):
    change(path, "DROP INDEX message_history_intent_idx",
           "CREATE INDEX message_history_intent_idx ON message_history (sentiment)")
    assert findings(path) == [("error", "index", "duckdb.message_history.message_history_intent_idx", "differs",
                               "definition")]


def test_extra_index_is_a_warning_and_an_error_when_strict(path):
    change(path, "CREATE INDEX message_history_sentiment_idx ON message_history (sentiment)")
    extra = ("duckdb.message_history.message_history_sentiment_idx", "extra")
    assert [(f.severity, f.object, f.problem) for f in diff(*duckdb_catalogs(path))] == [("warning", *extra)]
    assert [(f.severity, f.object, f.problem) for f in diff(*duckdb_catalogs(path), strict=True)] == [("error", *extra)]
