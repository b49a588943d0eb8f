"""Read a PostgreSQL catalog into the typed model, one set-based query per kind, in one snapshot.

The same reader builds the expected snapshot (from a scratch database) and reads the live
target, so both sides are printed by PostgreSQL the same way. Output settings are pinned as
pg_dump pins them (search_path, IntervalStyle, DateStyle, TimeZone, extra_float_digits,
quote_all_identifiers), so a setting on the database, the role or the session changes nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import DbtoolError
from . import model as m

FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
FK_MATCH = {"f": "FULL", "p": "PARTIAL", "s": "SIMPLE"}
CONTYPES = {"p": "primary key", "u": "unique", "c": "check", "f": "foreign key", "x": "exclusion", "t": "trigger"}
RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
PERSISTENCE = {"p": "permanent", "u": "unlogged", "t": "temporary"}
REPLICA_IDENTITY = {"d": "default", "n": "nothing", "f": "full", "i": "index"}
ENABLED = {"O": "origin", "D": "disabled", "R": "replica", "A": "always"}
PROKINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}
TYPTYPES = {"d": "domain", "c": "composite", "r": "range", "m": "multirange"}
DEFACL_TYPES = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}

# Settings pg_dump pins: how constants, names and times are printed must not depend on the session.
PINNED = {
    "search_path": "pg_catalog", "IntervalStyle": "postgres", "DateStyle": "ISO, MDY", "TimeZone": "UTC",
    "extra_float_digits": "3", "quote_all_identifiers": "off", "standard_conforming_strings": "on",
    "bytea_output": "hex", "xmloption": "content",
}

# The role that ran the migrations: owner of dbtool's bookkeeping, else of yoyo's table, else the database's.
_MIGRATOR = """coalesce((SELECT relowner FROM pg_class WHERE oid = to_regclass('dbtool.applied_file')),
                        (SELECT relowner FROM pg_class WHERE oid = to_regclass('public._yoyo_migration')),
                        (SELECT datdba FROM pg_database WHERE datname = current_database()))"""


def _role(role: str, schema_owner: str | None = None) -> str:
    """A role's name, `<migrator>` for the role that ran the migrations (and `<schema owner>` for schema_owner)."""
    owns_schema = f"WHEN {role} = {schema_owner} THEN '<schema owner>' " if schema_owner else ""
    return f"CASE WHEN {role} = {_MIGRATOR} THEN '<migrator>' {owns_schema}ELSE pg_get_userbyid({role}) END"


def _owner(owner: str, schema_owner: str = "n.nspowner") -> str:
    return _role(owner, schema_owner)


def _acl(acl: str, owner: str, objtype: str | None) -> str:
    """grantee:PRIVILEGE[*] items, sorted; the owner as <owner>, PUBLIC as PUBLIC; NULL (defaults) made explicit."""
    source = f"coalesce({acl}, acldefault('{objtype}', {owner}))" if objtype else acl
    items = f"""ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = {owner} THEN '<owner>'
                                  ELSE pg_get_userbyid(a.grantee) END
                             || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
                      FROM aclexplode({source}) a ORDER BY 1)"""
    return items if objtype else f"CASE WHEN {acl} IS NULL THEN '{{}}'::text[] ELSE {items} END"


QUERIES: dict[str, str] = {
    "schema": f"""
        SELECT n.nspname AS name,
               {_role('n.nspowner')} AS owner,
               {_acl('n.nspacl', 'n.nspowner', 'n')} AS acl, obj_description(n.oid, 'pg_namespace') AS comment
        FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)""",
    "extension": """
        SELECT n.nspname AS schema, e.extname AS name, e.extversion AS version
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "enum": f"""
        SELECT n.nspname AS schema, t.typname AS name,
               ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
               {_owner('t.typowner')} AS owner, {_acl('t.typacl', 't.typowner', 'T')} AS acl,
               obj_description(t.oid, 'pg_type') AS comment
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND t.typtype = 'e'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                          AND d.deptype = 'e')""",
    "type": f"""
        SELECT n.nspname AS schema, t.typname AS name, t.typtype::text AS type_kind,
               CASE t.typtype
                 WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
                      || coalesce(' COLLATE ' || nullif(t.typcollation, bt.typcollation)::regcollation::text, '')
                      || coalesce(' DEFAULT ' || t.typdefault, '')
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' '
                                                     || pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                                   FROM pg_constraint c WHERE c.contypid = t.oid), '')
                 WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                                  ', ' ORDER BY a.attnum)
                                FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0
                                  AND NOT a.attisdropped)
                 WHEN 'r' THEN (SELECT format_type(r.rngsubtype, NULL)
                                       || coalesce(' SUBTYPE_DIFF ' || nullif(r.rngsubdiff, 0)::regproc::text, '')
                                FROM pg_range r WHERE r.rngtypid = t.oid)
                 ELSE '' END AS definition,
               {_owner('t.typowner')} AS owner, {_acl('t.typacl', 't.typowner', 'T')} AS acl,
               obj_description(t.oid, 'pg_type') AS comment
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
        LEFT JOIN pg_class tc ON tc.oid = t.typrelid
        WHERE n.nspname = ANY(%(schemas)s) AND t.typtype IN ('d', 'c', 'r')
          AND (t.typtype <> 'c' OR tc.relkind = 'c')
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                          AND d.deptype = 'e')""",
    "function": f"""
        SELECT n.nspname AS schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
               p.prokind::text AS kind, pg_get_function_result(p.oid) AS returns, l.lanname AS language,
               p.provolatile::text AS volatility, p.prosrc AS source, p.prosecdef AS security_definer,
               coalesce(p.proconfig, '{{}}') AS config, p.proisstrict AS strict, p.proleakproof AS leakproof,
               p.proparallel::text AS parallel, p.procost::float8 AS cost, p.prorows::float8 AS rows,
               {_owner('p.proowner')} AS owner, {_acl('p.proacl', 'p.proowner', 'f')} AS acl,
               obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ANY(%(schemas)s)
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype IN ('e', 'i'))""",
    "sequence": f"""
        SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type,
               s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max,
               s.seqcache AS cache, s.seqcycle AS cycle, c.relpersistence::text AS persistence,
               (SELECT tn.nspname || '.' || t.relname || '.' || a.attname
                FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                JOIN pg_namespace tn ON tn.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                  AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by,
               {_owner('c.relowner')} AS owner, {_acl('c.relacl', 'c.relowner', 's')} AS acl
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "table": f"""
        SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
               c.relpersistence::text AS persistence,
               coalesce(c.reloptions, '{{}}') || ARRAY(SELECT 'toast.' || o FROM pg_class tt, unnest(tt.reloptions) o
                                                      WHERE tt.oid = c.reltoastrelid) AS options,
               c.relreplident::text AS replica_identity, ts.spcname AS tablespace,
               c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
               ARRAY(SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                     WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS inherits,
               ARRAY(SELECT cn.nspname || '.' || cc.relname FROM pg_inherits i JOIN pg_class cc ON cc.oid = i.inhrelid
                     JOIN pg_namespace cn ON cn.oid = cc.relnamespace
                     WHERE i.inhparent = c.oid AND cn.nspname <> ALL(%(schemas)s) ORDER BY 1) AS inherited_by,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
               pg_get_expr(c.relpartbound, c.oid) AS partition_bound,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
               {_owner('c.relowner')} AS owner, {_acl('c.relacl', 'c.relowner', 'r')} AS acl,
               ARRAY(SELECT pt.pubname FROM pg_publication_tables pt
                     WHERE pt.schemaname = n.nspname AND pt.tablename = c.relname ORDER BY 1) AS publications,
               obj_description(c.oid, 'pg_class') AS comment
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')""",
    "column": f"""
        SELECT n.nspname AS schema, c.relname AS table, a.attname AS name,
               row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS position,
               format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
               CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
               CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity,
               CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated,
               CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END AS collation,
               CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END AS storage,
               nullif(a.attcompression::text, '') AS compression,
               CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END AS statistics,
               coalesce(a.attoptions, '{{}}') AS options,
               {_acl('a.attacl', 'c.relowner', None)} AS acl,
               col_description(a.attrelid, a.attnum) AS comment, a.attrelid AS relid
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraint": """
        SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, con.contype::text AS contype,
               pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated,
               con.condeferrable AS deferrable, con.condeferred AS initially_deferred,
               CASE WHEN con.contype = 'f' THEN rn.nspname || '.' || rc.relname END AS references,
               con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete,
               con.confmatchtype::text AS match,
               NOT EXISTS (SELECT FROM pg_trigger tg WHERE tg.tgconstraint = con.oid AND tg.tgenabled IN ('D', 'R'))
                 AS enforced,
               ARRAY(SELECT a.attname FROM unnest(con.confdelsetcols) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)
                 AS delete_set_columns,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
                 AS ref_columns,
               con.conindid AS index_oid, obj_description(con.oid, 'pg_constraint') AS comment
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) OR (con.contype = 'f' AND rn.nspname = ANY(%(schemas)s))""",
    "index": """
        SELECT n.nspname AS schema, t.relname AS table, i.relname AS name, pg_get_indexdef(i.oid) AS definition,
               x.indisunique AS unique, x.indisprimary AS primary, x.indisvalid AS valid, x.indisready AS ready,
               x.indisclustered AS clustered, x.indpred IS NOT NULL AS partial, ts.spcname AS tablespace,
               ARRAY(SELECT a.attname FROM unnest(x.indkey[0:x.indnkeyatts - 1]) WITH ORDINALITY k(num, ord)
                     LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num AND k.num > 0
                     ORDER BY k.ord) AS key_columns,
               x.indexrelid AS oid, obj_description(i.oid, 'pg_class') AS comment
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace LEFT JOIN pg_tablespace ts ON ts.oid = i.reltablespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "trigger": """
        SELECT n.nspname AS schema, c.relname AS table, tg.tgname AS name, pg_get_triggerdef(tg.oid) AS definition,
               tg.tgenabled::text AS enabled
        FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT tg.tgisinternal""",
    "rule": """
        SELECT n.nspname AS schema, c.relname AS table, r.rulename AS name, pg_get_ruledef(r.oid) AS definition,
               r.ev_enabled::text AS enabled
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND r.rulename <> '_RETURN'""",
    "policy": """
        SELECT n.nspname AS schema, c.relname AS table, p.polname AS name,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
               p.polpermissive AS permissive,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r
                     ORDER BY 1) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS using, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "statistics": """
        SELECT n.nspname AS schema, c.relname AS table, s.stxname AS name,
               pg_get_statisticsobjdef(s.oid) AS definition,
               CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget END AS target
        FROM pg_statistic_ext s JOIN pg_class c ON c.oid = s.stxrelid JOIN pg_namespace n ON n.oid = s.stxnamespace
        WHERE n.nspname = ANY(%(schemas)s)""",
    "default_privilege": f"""
        SELECT n.nspname AS schema,
               {_role('d.defaclrole')} || ':' || d.defaclobjtype::text AS name, d.defaclnamespace = 0 AS global,
               {_acl('d.defaclacl', 'd.defaclrole', None)} AS acl
        FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace OR d.defaclnamespace = 0
        WHERE n.nspname = ANY(%(schemas)s)""",
    # Whatever else pg_dump would emit from a module schema: reported, never skipped in silence.
    "unmodeled": """
        SELECT n.nspname AS schema, x.name, x.what
        FROM pg_namespace n CROSS JOIN LATERAL (
            SELECT oprname || '(' || format_type(oprleft, NULL) || ',' || format_type(oprright, NULL) || ')',
                   'operator', 'pg_operator'::regclass, oid FROM pg_operator WHERE oprnamespace = n.oid
            UNION ALL SELECT opcname, 'operator class', 'pg_opclass'::regclass, oid FROM pg_opclass
              WHERE opcnamespace = n.oid
            UNION ALL SELECT opfname, 'operator family', 'pg_opfamily'::regclass, oid FROM pg_opfamily
              WHERE opfnamespace = n.oid
            UNION ALL SELECT collname, 'collation', 'pg_collation'::regclass, oid FROM pg_collation
              WHERE collnamespace = n.oid
            UNION ALL SELECT conname, 'conversion', 'pg_conversion'::regclass, oid FROM pg_conversion
              WHERE connamespace = n.oid
            UNION ALL SELECT cfgname, 'text search configuration', 'pg_ts_config'::regclass, oid FROM pg_ts_config
              WHERE cfgnamespace = n.oid
            UNION ALL SELECT dictname, 'text search dictionary', 'pg_ts_dict'::regclass, oid FROM pg_ts_dict
              WHERE dictnamespace = n.oid
            UNION ALL SELECT prsname, 'text search parser', 'pg_ts_parser'::regclass, oid FROM pg_ts_parser
              WHERE prsnamespace = n.oid
            UNION ALL SELECT tmplname, 'text search template', 'pg_ts_template'::regclass, oid FROM pg_ts_template
              WHERE tmplnamespace = n.oid
            UNION ALL SELECT typname, 'type (' || typtype::text || ')', 'pg_type'::regclass, oid FROM pg_type
              WHERE typnamespace = n.oid AND typtype IN ('b', 'p') AND typcategory <> 'A'
            UNION ALL SELECT relname, 'relation (' || relkind::text || ')', 'pg_class'::regclass, oid FROM pg_class
              WHERE relnamespace = n.oid AND relkind NOT IN ('r', 'p', 'v', 'm', 'f', 'i', 'I', 'S', 't', 'c')
        ) AS x(name, what, classid, objid)
        WHERE n.nspname = ANY(%(schemas)s)
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = x.classid AND d.objid = x.objid AND d.deptype = 'e')""",
    # Settings of the database, or of a role, that change what every session does (not how it prints).
    "setting": """
        SELECT '' AS schema,
               CASE WHEN s.setrole = 0 THEN 'database' ELSE 'role ' || pg_get_userbyid(s.setrole) END
                 || ':' || split_part(cfg, '=', 1) AS name, split_part(cfg, '=', 2) AS value
        FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) cfg
        WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
          AND split_part(cfg, '=', 1) = 'session_replication_role'""",
}
KINDS = tuple(QUERIES)
assert set(KINDS) == set(m.BY_KIND), "every kind of the model has its query"


class _Build:
    """Makes one kind's objects from its rows: equal to `cls.from_json(row)`, at a fraction of the cost.

    A frozen dataclass's __init__ sets each field through object.__setattr__ (about 6 us for a column
    on this machine's CPU), and a catalog of 5,000 tables holds 100,000 objects. Instead the object's
    __dict__ is filled at once from the row's tuple: the defaults, then the row's columns, less those
    that are no field (oids); array columns become tuples, as from_json makes every list a tuple.
    A query missing a field without a default is refused, as __init__ would refuse it.
    """

    __slots__ = ("cls", "names", "defaults", "required", "tuples")

    def __init__(self, cls: type[m.Obj]) -> None:
        fields = dataclasses.fields(cls)
        if any(f.default_factory is not dataclasses.MISSING for f in fields):
            raise TypeError(f"{cls.__name__}: a field with a default_factory needs __init__")
        self.cls = cls
        self.names = frozenset(f.name for f in fields)
        self.defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        self.required = self.names - self.defaults.keys()
        self.tuples = frozenset(f.name for f in fields if "tuple" in str(f.type))

    def all(self, columns: list[str], rows: list[tuple], hook: Callable[[dict[str, Any]], None] | None) -> list[m.Obj]:
        """Objects of `rows` (tuples in `columns` order); `hook` adjusts each object's attributes in place."""
        extra = [c for c in columns if c not in self.names]
        tuples = [c for c in columns if c in self.tuples]
        new, cls, defaults = object.__new__, self.cls, self.defaults
        out = []
        for values in rows:
            obj = new(cls)
            d = obj.__dict__
            d.update(defaults)
            d.update(zip(columns, values))
            if hook is not None:
                hook(d)
            for c in extra:
                d.pop(c, None)
            for c in tuples:
                if type(d[c]) is list:
                    d[c] = tuple(d[c])
            out.append(obj)
        if out and not self.required <= out[0].__dict__.keys():
            raise TypeError(f"{self.cls.__name__}: no {', '.join(sorted(self.required - out[0].__dict__.keys()))}")
        return out


_BUILD = {kind: _Build(cls) for kind, cls in m.BY_KIND.items()}


class _Reader:
    """Shapes rows into model objects; links constraints to the indexes that back them.

    A hook per kind turns PostgreSQL's codes into the model's words, in place, before the object
    is complete (it still holds the query's extra columns, such as oids).
    """

    def __init__(self) -> None:
        self.index_constraint: dict[int, str] = {}

    def shape_all(self, kind: str, columns: list[str], rows: list[tuple]) -> list[m.Obj]:
        return _BUILD[kind].all(columns, rows, getattr(self, f"_{kind}", None))

    def _schema(self, d: dict[str, Any]) -> None:
        d["schema"] = d["name"]

    def _table(self, d: dict[str, Any]) -> None:
        d["relkind"] = RELKINDS[d["relkind"]]
        d["persistence"] = PERSISTENCE[d["persistence"]]
        d["replica_identity"] = REPLICA_IDENTITY[d["replica_identity"]]

    def _sequence(self, d: dict[str, Any]) -> None:
        d["persistence"] = PERSISTENCE[d["persistence"]]

    def _function(self, d: dict[str, Any]) -> None:
        d["kind"] = PROKINDS[d["kind"]]
        d["source"] = (d["source"] or "").strip() or None

    def _type(self, d: dict[str, Any]) -> None:
        d["type_kind"] = TYPTYPES.get(d["type_kind"], d["type_kind"])

    def _constraint(self, d: dict[str, Any]) -> None:
        contype = d.pop("contype")
        if d["index_oid"] and contype in "pux":
            self.index_constraint[d["index_oid"]] = d["name"]
        definition = d["definition"] or ""  # NULL when dropped while we read
        if definition.endswith(" NOT VALID"):  # validity is health, reported apart from the definition
            definition = definition[: -len(" NOT VALID")]
        d["definition"] = definition
        d["type"] = CONTYPES.get(contype, contype)
        if contype == "f":
            d["on_update"] = FK_ACTIONS[d["on_update"]]
            d["on_delete"] = FK_ACTIONS[d["on_delete"]] + (
                f" ({', '.join(d['delete_set_columns'])})" if d["delete_set_columns"] else "")
            d["match"] = FK_MATCH.get(d["match"], d["match"])
        else:
            d["on_update"] = d["on_delete"] = d["match"] = None

    def _index(self, d: dict[str, Any]) -> None:
        # The definition without the index's own name: "same name, other columns" must differ.
        d["definition"] = (d["definition"] or "").split(" ON ", 1)[-1]
        d["constraint"] = self.index_constraint.get(d["oid"])

    def _trigger(self, d: dict[str, Any]) -> None:
        d["enabled"] = ENABLED[d["enabled"]]

    _rule = _trigger

    def _default_privilege(self, d: dict[str, Any]) -> None:
        role, _, objtype = d["name"].rpartition(":")
        scope = " (global)" if d.pop("global") else ""
        d["name"] = f"{role}:{DEFACL_TYPES.get(objtype, objtype)}{scope}"


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while the catalog is built.

    Reading 5,000 tables makes some 100,000 objects and as many rows at once, all kept: each full
    collection the allocations trigger walks them all, for nothing (they hold no cycles). That was half
    of validate's CPU at 5,000 tables. Reference counting still frees everything as usual; the
    collector is enabled again afterwards (unless it was already off, e.g. paused by another thread).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_catalog(conn: psycopg.Connection, schemas: list[str]) -> m.Catalog:
    """One query per kind, whatever the number of tables, in one snapshot. Leaves no transaction open.

    A worker thread runs the queries one after another while this thread shapes the rows of
    the kinds already fetched: the Python work hides behind the server's. Only the worker
    touches the connection until it is done.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise DbtoolError("read_catalog needs a connection outside a transaction (it opens its own snapshot)")
    params = {"schemas": list(schemas)}
    fetched: queue.Queue = queue.Queue()

    def fetch() -> None:
        try:
            with conn.cursor() as cur:  # plain tuples: the objects are built from them directly
                for kind in KINDS:
                    rows = cur.execute(QUERIES[kind], params).fetchall()
                    fetched.put((kind, [c.name for c in cur.description or ()], rows))
        except BaseException as exc:  # handed to the caller's thread
            fetched.put((None, None, exc))

    objects: list[m.Obj] = []
    with _no_cyclic_gc(), conn.transaction():
        # One snapshot for every query: DDL committed meanwhile cannot mix two catalogs.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for name, value in PINNED.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        worker = threading.Thread(target=fetch, name="dbtool-catalog-read", daemon=True)
        worker.start()
        try:
            reader = _Reader()
            for _ in KINDS:  # in KINDS order: constraints before the indexes they own
                kind, columns, rows = fetched.get()
                if kind is None:
                    raise rows
                objects.extend(reader.shape_all(kind, columns, rows))
        finally:
            worker.join()
        return m.Catalog.of(objects)
