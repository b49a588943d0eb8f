"""Read a PostgreSQL catalog with one set-based query per kind of object.

The result is plain data, JSON-ready: {kind: {object name: {attribute: value}}}.
The same reader builds the expected snapshot (from a scratch database) and reads the
live target, so both sides are printed by PostgreSQL the same way. search_path is
pinned to pg_catalog so every name in a definition comes out schema-qualified.
"""

from __future__ import annotations

import psycopg

KINDS = ("schema", "table", "column", "constraint", "index", "enum", "trigger", "function")

FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
FK_MATCH = {"f": "FULL", "p": "PARTIAL", "s": "SIMPLE"}
CONTYPES = {"p": "primary key", "u": "unique", "c": "check", "f": "foreign key", "x": "exclusion", "t": "trigger"}

QUERIES = {
    "schema": """
        SELECT n.nspname, obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)""",
    "table": """
        SELECT n.nspname, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')""",
    "column": """
        SELECT n.nspname, c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               col_description(c.oid, a.attnum)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraint": """
        SELECT n.nspname, c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid),
               con.convalidated, con.condeferrable, con.condeferred,
               con.confrelid::regclass::text, con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "index": """
        SELECT n.nspname, t.relname, i.relname, pg_get_indexdef(i.oid), x.indisunique, x.indisprimary,
               x.indisvalid, x.indisready, con.conname
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
                                    AND con.contype IN ('p', 'u', 'x')
        WHERE n.nspname = ANY(%(schemas)s)""",
    "enum": """
        SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder),
               obj_description(t.oid, 'pg_type')
        FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = ANY(%(schemas)s)
        GROUP BY n.nspname, t.typname, t.oid""",
    "trigger": """
        SELECT n.nspname, c.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled::text
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT tg.tgisinternal""",
    "function": """
        SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               pg_get_function_result(p.oid), l.lanname, p.provolatile::text, p.prosrc,
               obj_description(p.oid, 'pg_proc')
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ANY(%(schemas)s)""",
}


def _schema(r):
    return r[0], {"comment": r[1]}


def _table(r):
    kinds = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
    return f"{r[0]}.{r[1]}", {"relkind": kinds[r[2]], "comment": r[3]}


def _column(r):
    generated = r[6] if r[8] == "s" else None
    return f"{r[0]}.{r[1]}.{r[2]}", {
        "position": r[3],
        "type": r[4],
        "nullable": not r[5],
        "default": None if generated else r[6],
        "identity": {"a": "ALWAYS", "d": "BY DEFAULT"}.get(r[7]),
        "generated": generated,
        "comment": r[9],
    }


def _constraint(r):
    definition = r[4]
    if definition.endswith(" NOT VALID"):  # validity is reported as health, not as a different definition
        definition = definition[: -len(" NOT VALID")]
    attrs = {"type": CONTYPES.get(r[3], r[3]), "table": f"{r[0]}.{r[1]}", "columns": list(r[12]),
             "definition": definition, "validated": r[5], "deferrable": r[6], "initially_deferred": r[7]}
    if r[3] == "f":
        attrs.update(references=r[8], ref_columns=list(r[13]), on_update=FK_ACTIONS[r[9]],
                     on_delete=FK_ACTIONS[r[10]], match=FK_MATCH.get(r[11], r[11]))
    return f"{r[0]}.{r[1]}.{r[2]}", attrs


def _index(r):
    # Compare the definition without the index's own name: "same name, other columns" must differ.
    definition = r[3].split(" ON ", 1)[1]
    return f"{r[0]}.{r[1]}.{r[2]}", {
        "table": f"{r[0]}.{r[1]}", "definition": definition, "unique": r[4], "primary": r[5],
        "valid": r[6], "ready": r[7], "constraint": r[8]}


def _enum(r):
    return f"{r[0]}.{r[1]}", {"labels": list(r[2]), "comment": r[3]}


def _trigger(r):
    return f"{r[0]}.{r[1]}.{r[2]}", {"table": f"{r[0]}.{r[1]}", "definition": r[3], "enabled": r[4] != "D"}


def _function(r):
    return f"{r[0]}.{r[1]}", {"returns": r[2], "language": r[3], "volatility": r[4], "source": r[5].strip(),
                              "comment": r[6]}


SHAPERS = {"schema": _schema, "table": _table, "column": _column, "constraint": _constraint,
           "index": _index, "enum": _enum, "trigger": _trigger, "function": _function}


def read_catalog(conn: psycopg.Connection, schemas: list[str]) -> dict[str, dict[str, dict]]:
    """One query per kind, whatever the number of tables. Leaves no transaction open."""
    catalog: dict[str, dict[str, dict]] = {}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL search_path = pg_catalog")
        for kind in KINDS:
            cur.execute(QUERIES[kind], {"schemas": list(schemas)})
            catalog[kind] = dict(sorted(SHAPERS[kind](row) for row in cur.fetchall()))
    return catalog


def schema_of(name: str) -> str:
    return name.split(".", 1)[0]


def only_schemas(catalog: dict, schemas: list[str]) -> dict:
    return {k: {n: a for n, a in objs.items() if schema_of(n) in schemas} for k, objs in catalog.items()}
