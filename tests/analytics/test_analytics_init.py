"""dbtool analytics init: idempotent, each sql/duckdb/ file all or nothing, one-line errors."""

from __future__ import annotations

import duckdb
import pytest

from dbtool.analytics import db
from dbtool.analytics.catalog import read_duckdb_catalog
from helpers import run_dbtool


def tables(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1").fetchall()]


def test_init_twice_is_a_no_op(tmp_path):
    path = tmp_path / "a.duckdb"
    _, first = db.init(path)
    assert first.new_objects == 12  # 6 tables, 6 indexes
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO analytics_sync_state (source, last_id) VALUES ('messages', 7)")
        before = read_duckdb_catalog(conn)
    _, second = db.init(path)
    assert second.new_objects == 0
    with duckdb.connect(str(path)) as conn:
        assert read_duckdb_catalog(conn) == before
        assert conn.execute("SELECT last_id FROM analytics_sync_state").fetchall() == [(7,)]


def test_failing_file_leaves_nothing_and_names_file_and_line(tmp_path):
    (tmp_path / "010_good.sql").write_text("-- fine\nCREATE TABLE IF NOT EXISTS good (x INTEGER);\n")
    (tmp_path / "020_bad.sql").write_text(
        "-- breaks on its third statement\n"
        "CREATE TABLE IF NOT EXISTS half (x INTEGER);\n"
        "CREATE INDEX IF NOT EXISTS half_x_idx ON half (x);\n"
        "\n"
        "CREATE TABLE IF NOT EXISTS broken (\n"
        "    y no_such_type\n"
        ");\n")
    conn = duckdb.connect(":memory:")
    with pytest.raises(db.AnalyticsError) as err:
        db.apply_schema(conn, sql_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith("020_bad.sql, line 6: ") and "no_such_type" in msg and "\n" not in msg
    assert tables(conn) == ["good"]  # 010 committed; nothing of 020 (not even `half`)
    assert conn.execute("SELECT count(*) FROM duckdb_indexes()").fetchall() == [(0,)]
    conn.execute("SELECT 1")  # the connection is usable: no transaction left aborted


def test_parse_error_names_the_line(tmp_path):
    (tmp_path / "010_typo.sql").write_text("-- a\n\nCREATE TABLE t (x INTEGER);\nCREATE TABEL u (x INTEGER);\n")
    conn = duckdb.connect(":memory:")
    with pytest.raises(db.AnalyticsError, match=r"^010_typo\.sql, line 4: Parser Error"):
        db.apply_schema(conn, sql_dir=tmp_path)
    assert tables(conn) == []


def test_cli_init_uses_env_path_and_is_idempotent(tmp_path):
    path = tmp_path / "sub" / "env.duckdb"
    first = run_dbtool("analytics", "init", env={"DBTOOL_DUCKDB_PATH": str(path)})
    assert first.returncode == 0, first.stderr
    assert "12 new" in first.stderr and path.exists()
    second = run_dbtool("analytics", "init", "--path", str(path))
    assert second.returncode == 0 and "0 new" in second.stderr


def test_cli_init_refuses_a_file_that_is_not_duckdb(tmp_path):
    bogus = tmp_path / "not.duckdb"
    bogus.write_text("hello, I am not a database\n" * 100)
    out = run_dbtool("analytics", "init", "--path", str(bogus))
    assert out.returncode == 1
    assert out.stderr.startswith("dbtool: cannot open DuckDB file") and "Traceback" not in out.stderr


@pytest.mark.parametrize("lead", ["", "\n\n\n", "-- note\n/* block\n comment */\n\n"])
@pytest.mark.parametrize("between", ["", "\n", "\n-- the next one breaks\n\n"])
def test_error_line_is_the_failing_token_whatever_precedes_it(tmp_path, lead, between):
    """Blank lines and comments before and between statements never shift the reported line."""
    text = (lead + "CREATE TABLE IF NOT EXISTS a (x INTEGER);\n" + between
            + "CREATE TABLE IF NOT EXISTS b (\n    x INTEGER,\n    y no_such_type\n);\n")
    (tmp_path / "010_f.sql").write_text(text)
    token_line = text.splitlines().index("    y no_such_type") + 1
    with pytest.raises(db.AnalyticsError, match=rf"^010_f\.sql, line {token_line}: .*no_such_type"):
        db.apply_schema(duckdb.connect(":memory:"), sql_dir=tmp_path)


def test_error_without_a_pointer_names_the_statement_line(tmp_path):
    """A failure DuckDB gives no LINE for (a constraint at run time) names its statement's first line."""
    (tmp_path / "010_f.sql").write_text(
        "CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY);\n\n"
        "INSERT INTO t VALUES (1);\n"
        "-- a duplicate key\n"
        "INSERT INTO t\n  VALUES (1);\n")
    with pytest.raises(db.AnalyticsError, match=r"^010_f\.sql, line 5: Constraint Error") as err:
        db.apply_schema(duckdb.connect(":memory:"), sql_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_parse_error_on_the_last_line_without_newline_stays_in_the_file(tmp_path):
    (tmp_path / "010_f.sql").write_text("CREATE TABLE t (x INTEGER);\nCREATE TABLE u (x INTEGER")
    with pytest.raises(db.AnalyticsError, match=r"^010_f\.sql, line [12]: Parser Error"):
        db.apply_schema(duckdb.connect(":memory:"), sql_dir=tmp_path)
