"""The DuckDB catalog reader: a file built from sql/duckdb/ matches; drift shows in a dict comparison."""

from __future__ import annotations

import duckdb
import pytest

from dbtool.analytics import db
from dbtool.analytics.catalog import expected_duckdb_catalog, read_duckdb_catalog


@pytest.fixture(scope="module")
def expected():
    return expected_duckdb_catalog()


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "live.duckdb"
    db.init(path)
    with duckdb.connect(str(path)) as conn:
        yield conn


def diff(expected: dict, live: dict) -> set[tuple[str, str, str]]:
    """(kind, name, what) for each object missing, extra or different."""
    out = set()
    for kind in expected.keys() | live.keys():
        exp, got = expected.get(kind, {}), live.get(kind, {})
        out |= {(kind, n, "missing") for n in exp.keys() - got.keys()}
        out |= {(kind, n, "extra") for n in got.keys() - exp.keys()}
        out |= {(kind, n, "differs") for n in exp.keys() & got.keys() if exp[n] != got[n]}
    return out


def test_expected_catalog_describes_the_spec_tables(expected):
    spec_tables = {"duckdb.conversation_context", "duckdb.message_history", "duckdb.message_embeddings"}
    assert spec_tables <= set(expected["table"])
    assert expected["column"]["duckdb.message_embeddings.embedding"]["type"] == "FLOAT[384]"
    assert expected["column"]["duckdb.conversation_context.key_entities"]["type"] == "JSON"
    assert expected["index"]["duckdb.message_history.message_history_phone_number_created_at_idx"]["definition"] \
        == "message_history(phone_number, created_at)"


def test_clean_file_equals_expected(expected, live):
    assert read_duckdb_catalog(live) == expected


def drifted(tmp_path, old_ddl: str) -> duckdb.DuckDBPyConnection:
    """A file where an older definition of a table came first: init's IF NOT EXISTS keeps it (the realistic
    drift; DuckDB refuses ALTER on tables that have indexes)."""
    path = tmp_path / "drifted.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(old_ddl)
    db.init(path)
    return duckdb.connect(str(path))


def spec_ddl(table: str) -> str:
    """The table's CREATE statement as sql/duckdb/ has it (DuckDB prints it back)."""
    with duckdb.connect(":memory:") as conn:
        db.apply_schema(conn)
        return conn.execute("SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]


def test_dropped_column(expected, tmp_path):
    ddl = spec_ddl("conversation_context").replace("summary VARCHAR, ", "")
    assert "summary" not in ddl
    found = diff(expected, read_duckdb_catalog(drifted(tmp_path, ddl)))
    assert ("column", "duckdb.conversation_context.summary", "missing") in found
    # later columns moved up one position: reported too, as differences
    assert ("column", "duckdb.conversation_context.state", "differs") in found
    assert {k for k, _, _ in found} == {"column"}


def test_changed_type(expected, tmp_path):
    ddl = spec_ddl("message_history").replace("confidence DOUBLE", "confidence FLOAT")
    got = read_duckdb_catalog(drifted(tmp_path, ddl))
    assert diff(expected, got) == {("column", "duckdb.message_history.confidence", "differs")}
    assert got["column"]["duckdb.message_history.confidence"]["type"] == "FLOAT"


def test_missing_table(expected, live):
    live.execute("DROP TABLE message_embeddings")
    found = diff(expected, read_duckdb_catalog(live))
    assert ("table", "duckdb.message_embeddings", "missing") in found
    assert ("index", "duckdb.message_embeddings.message_embeddings_phone_number_idx", "missing") in found
    assert {n for k, n, _ in found if k == "table"} == {"duckdb.message_embeddings"}


def test_index_on_other_columns_differs(expected, live):
    live.execute("DROP INDEX message_history_intent_idx")
    live.execute("CREATE INDEX message_history_intent_idx ON message_history (sentiment)")
    assert diff(expected, read_duckdb_catalog(live)) == {
        ("index", "duckdb.message_history.message_history_intent_idx", "differs")}
