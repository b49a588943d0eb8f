"""Read a PostgreSQL catalog with one set-based query per kind of object.

The result is plain data, JSON-ready: {kind: {object name: {attribute: value}}}.
The same reader builds the expected snapshot (from a scratch database) and reads the
live target, so both sides are printed by PostgreSQL the same way. search_path is
pinned to pg_catalog so every name in a definition comes out schema-qualified.
"""

from __future__ import annotations

import queue
import threading

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
               ds.description, a.attrelid
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.classoid = 'pg_class'::regclass
                                   AND ds.objsubid = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraint": """
        SELECT n.nspname, c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid),
               con.convalidated, con.condeferrable, con.condeferred,
               con.confrelid::regclass::text, con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text,
               con.conrelid, con.conkey, con.confrelid, con.confkey, con.conindid,
               CASE WHEN con.contype = 'f' AND NOT con.confrelid IN (
                        SELECT c2.oid FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
                        WHERE n2.nspname = ANY(%(schemas)s))
                    THEN ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
               END
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "index": """
        SELECT n.nspname, t.relname, i.relname, pg_get_indexdef(i.oid), x.indisunique, x.indisprimary,
               x.indisvalid, x.indisready, x.indexrelid
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
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


class _Reader:
    """Shapes rows into {name: attributes}; resolves column numbers and index owners across kinds."""

    def __init__(self):
        self.attnames: dict[tuple[int, int], str] = {}
        self.index_constraint: dict[int, str] = {}

    def names(self, rel: int, nums) -> list[str]:
        return [self.attnames[rel, n] for n in nums or ()]

    def schema(self, rows):
        return {r[0]: {"comment": r[1]} for r in rows}

    def table(self, rows):
        kinds = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
        return {f"{r[0]}.{r[1]}": {"relkind": kinds[r[2]], "comment": r[3]} for r in rows}

    def column(self, rows):
        out = {}
        for nsp, rel, att, num, typ, notnull, expr, ident, gen, comment, relid in rows:
            self.attnames[relid, num] = att
            generated = expr if gen == "s" else None
            out[f"{nsp}.{rel}.{att}"] = {
                "position": num, "type": typ, "nullable": not notnull,
                "default": None if generated else expr,
                "identity": {"a": "ALWAYS", "d": "BY DEFAULT"}.get(ident),
                "generated": generated, "comment": comment}
        return out

    def constraint(self, rows):
        out = {}
        for (nsp, rel, name, contype, definition, validated, deferrable, deferred, ref, upd, dele, match,
             relid, key, refid, refkey, indid, external_ref_columns) in rows:
            if indid and contype in "pux":
                self.index_constraint[indid] = name
            if definition.endswith(" NOT VALID"):  # validity is reported as health, not as a definition
                definition = definition[: -len(" NOT VALID")]
            attrs = {"type": CONTYPES.get(contype, contype), "table": f"{nsp}.{rel}",
                     "columns": self.names(relid, key), "definition": definition, "validated": validated,
                     "deferrable": deferrable, "initially_deferred": deferred}
            if contype == "f":
                ref_columns = external_ref_columns or self.names(refid, refkey)
                attrs.update(references=ref, ref_columns=list(ref_columns), on_update=FK_ACTIONS[upd],
                             on_delete=FK_ACTIONS[dele], match=FK_MATCH.get(match, match))
            out[f"{nsp}.{rel}.{name}"] = attrs
        return out

    def index(self, rows):
        # The definition without the index's own name: "same name, other columns" must differ.
        return {f"{nsp}.{rel}.{name}": {
            "table": f"{nsp}.{rel}", "definition": definition.split(" ON ", 1)[1], "unique": unique,
            "primary": primary, "valid": valid, "ready": ready, "constraint": self.index_constraint.get(oid)}
            for nsp, rel, name, definition, unique, primary, valid, ready, oid in rows}

    def enum(self, rows):
        return {f"{r[0]}.{r[1]}": {"labels": list(r[2]), "comment": r[3]} for r in rows}

    def trigger(self, rows):
        return {f"{r[0]}.{r[1]}.{r[2]}": {"table": f"{r[0]}.{r[1]}", "definition": r[3], "enabled": r[4] != "D"}
                for r in rows}

    def function(self, rows):
        return {f"{r[0]}.{r[1]}": {"returns": r[2], "language": r[3], "volatility": r[4], "source": r[5].strip(),
                                   "comment": r[6]} for r in rows}


def read_catalog(conn: psycopg.Connection, schemas: list[str]) -> dict[str, dict[str, dict]]:
    """One query per kind, whatever the number of tables. Leaves no transaction open.

    A worker thread runs the queries one after another while this thread shapes the rows of
    the kinds already fetched: the Python work hides behind the server's. Only the worker
    touches the connection until it is done.
    """
    catalog: dict[str, dict[str, dict]] = {}
    params = {"schemas": list(schemas)}
    fetched: queue.Queue = queue.Queue()

    def fetch() -> None:
        try:
            with conn.cursor() as cur:
                for kind in KINDS:
                    fetched.put((kind, cur.execute(QUERIES[kind], params).fetchall()))
        except BaseException as exc:  # handed to the caller's thread
            fetched.put((None, exc))

    with conn.transaction():
        # One snapshot for every query: DDL committed meanwhile cannot mix two catalogs.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL search_path = pg_catalog")
        worker = threading.Thread(target=fetch, name="dbtool-catalog-read", daemon=True)
        worker.start()
        try:
            reader = _Reader()
            for _ in KINDS:  # in KINDS order: columns before constraints before indexes
                kind, rows = fetched.get()
                if kind is None:
                    raise rows
                catalog[kind] = getattr(reader, kind)(rows)
        finally:
            worker.join()
    return catalog


def schema_of(name: str) -> str:
    return name.split(".", 1)[0]
