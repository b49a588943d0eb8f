"""Read a DuckDB catalog into dbtool.catalog.model, and the expected one from sql/duckdb/.

Objects are keyed "duckdb.<table>", "duckdb.<table>.<column>",
"duckdb.<table>.<index or constraint>". The expected side applies sql/duckdb/ to an in-memory DuckDB
and reads it back with the same function, so types, defaults and index texts are printed by DuckDB
itself on both sides and a plain dict comparison finds drift.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..catalog import model as m
from .db import apply_schema

KINDS = ("table", "column", "constraint", "index")
PREFIX = "duckdb"

# Only the main schema of the attached file: DuckDB's own tables are internal, temp ones are not the file's.
_WHERE = "database_name = current_database() AND schema_name = 'main'"

QUERIES = {
    "table": f"""
        SELECT table_name, comment, has_primary_key FROM duckdb_tables()
        WHERE {_WHERE} AND NOT internal AND NOT temporary""",
    "column": f"""
        SELECT table_name, column_name, column_index, data_type, is_nullable, column_default, comment
        FROM duckdb_columns() WHERE {_WHERE} AND NOT internal""",
    # NOT NULL is reported by the column's nullable; keys and checks here.
    "constraint": f"""
        SELECT table_name, constraint_name, constraint_type, constraint_text, constraint_column_names
        FROM duckdb_constraints() WHERE {_WHERE} AND constraint_type <> 'NOT NULL'""",
    "index": f"""
        SELECT table_name, index_name, sql, is_unique, is_primary FROM duckdb_indexes() WHERE {_WHERE}""",
}


def _table(r) -> m.Obj:
    return m.Table(schema=PREFIX, name=r[0], comment=r[1])


def _column(r) -> m.Obj:
    return m.Column(schema=PREFIX, table=r[0], name=r[1], position=r[2], type=r[3], nullable=r[4], default=r[5],
                    comment=r[6])


def _constraint(r) -> m.Obj:
    return m.Constraint(schema=PREFIX, table=r[0], name=r[1], type=r[2].lower(), definition=r[3],
                        columns=tuple(r[4]))


def _index(r) -> m.Obj:
    # As for PostgreSQL: the definition without the index's own name, so "same name, other columns" differs.
    definition = (r[2] or "").split(" ON ", 1)[-1].rstrip(";").strip()
    return m.Index(schema=PREFIX, table=r[0], name=r[1], definition=definition, unique=r[3], primary=r[4])


SHAPERS = {"table": _table, "column": _column, "constraint": _constraint, "index": _index}


def read_duckdb_catalog(duck_conn: duckdb.DuckDBPyConnection) -> m.Catalog:
    """One query per kind, into the same typed model as PostgreSQL's (attributes DuckDB lacks stay at defaults)."""
    return m.Catalog.of([SHAPERS[kind](r) for kind in KINDS for r in duck_conn.execute(QUERIES[kind]).fetchall()])


def expected_duckdb_catalog(*, sql_dir: Path | None = None) -> m.Catalog:
    """What DuckDB makes of sql/duckdb/: applied to an in-memory database and read back."""
    with duckdb.connect(":memory:") as conn:
        apply_schema(conn, sql_dir=sql_dir)
        return read_duckdb_catalog(conn)
