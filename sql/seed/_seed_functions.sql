-- Session-local helpers of the seed files (pg_temp: nothing is left behind, no privilege beyond TEMP).
-- Included by every sql/seed/<module>.sql and <module>.clear.sql (`\ir`; dbtool inlines it the same way).
--
-- Ownership: pg_temp.dbtool_seed() inserts one seed row and records, in the same transaction, in
-- dbtool.seeded_row (keyed by table + primary key) every column as inserted; when the row's key is
-- already taken it inserts nothing and records the key as not the seed's. pg_temp.dbtool_clear_seed()
-- then deletes only rows recorded as inserted by the seed that still hold every recorded value and
-- that no row of any table references (children first, until nothing more can go), and returns per
-- table what it removed and what it kept and why. Rows it never recorded (an operator's store S001,
-- a database seeded before this bookkeeping) are never touched.
-- Values are compared as to_jsonb() text with the output settings pinned (TimeZone, DateStyle,
-- IntervalStyle, extra_float_digits), so the session's settings never make a row look changed.

CREATE OR REPLACE FUNCTION pg_temp.dbtool_seed_keys(tbl regclass)
RETURNS SETOF text[] LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
    -- The columns of each unique key without expressions or predicate, the primary key first.
    SELECT array_agg(a.attname::text ORDER BY k.ord)
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
    WHERE i.indrelid = tbl AND i.indisunique AND i.indpred IS NULL AND k.ord <= i.indnkeyatts
    GROUP BY i.indexrelid, i.indisprimary, i.indnkeyatts
    HAVING count(a.attname) = i.indnkeyatts
    ORDER BY i.indisprimary DESC, i.indexrelid
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbtool_seed_only(tbl regclass)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
    -- ONLY: rows of a table inheriting from a seed table are never looked at (a partitioned table has none itself).
    SELECT CASE WHEN relkind = 'p' THEN '' ELSE 'ONLY ' END || tbl::text FROM pg_class WHERE oid = tbl
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbtool_seed_match(cols text[], lhs text, rhs text, op text DEFAULT '=')
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $fn$
    SELECT format('ROW(%s) ' || op || ' ROW(%s)',
                  (SELECT string_agg(format('%s.%I', lhs, c), ', ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY u(c, o)),
                  (SELECT string_agg(format('%s.%I', rhs, c), ', ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY u(c, o)))
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbtool_seed(tbl regclass, r jsonb, match text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres' SET extra_float_digits = 1 AS $fn$
DECLARE
    cols text := (SELECT string_agg(format('%I', k), ', ') FROM jsonb_object_keys(r) AS k);
    pk_cols text[] := (SELECT k FROM pg_temp.dbtool_seed_keys(tbl) AS k LIMIT 1);
    got jsonb;
    found jsonb;
    key text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = tbl AND indisprimary) THEN
        RAISE EXCEPTION 'seed table % has no primary key: its rows cannot be recorded', tbl;
    END IF;
    IF match IS NOT NULL THEN  -- a table without a natural unique key: the seed row is "there" when these columns match
        EXECUTE format('SELECT to_jsonb(t) FROM %s t, jsonb_populate_record(NULL::%s, $1) p WHERE %s LIMIT 1',
                       pg_temp.dbtool_seed_only(tbl), tbl,
                       pg_temp.dbtool_seed_match(match, 't', 'p', 'IS NOT DISTINCT FROM'))
            INTO found USING r;
        IF found IS NULL THEN
            EXECUTE format('INSERT INTO %s AS t (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1) RETURNING to_jsonb(t)',
                           tbl, cols, cols, tbl) INTO got USING r;
        END IF;
    ELSE
        EXECUTE format('INSERT INTO %s AS t (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1) '
                       'ON CONFLICT DO NOTHING RETURNING to_jsonb(t)', tbl, cols, cols, tbl) INTO got USING r;
        IF got IS NULL THEN  -- which row holds the key the seed wanted?
            FOR key IN SELECT k FROM pg_temp.dbtool_seed_keys(tbl) AS k LOOP
                CONTINUE WHEN EXISTS (SELECT 1 FROM unnest(key) c WHERE r ->> c IS NULL);
                EXECUTE format('SELECT to_jsonb(t) FROM %s t, jsonb_populate_record(NULL::%s, $1) p WHERE %s',
                               pg_temp.dbtool_seed_only(tbl), tbl, pg_temp.dbtool_seed_match(key, 't', 'p'))
                    INTO found USING r;
                EXIT WHEN found IS NOT NULL;
            END LOOP;
        END IF;
    END IF;
    IF to_regclass('dbtool.seeded_row') IS NULL THEN
        IF to_regnamespace('dbtool') IS NULL THEN
            CREATE SCHEMA dbtool;
        END IF;
        CREATE TABLE dbtool.seeded_row (
            schema_name text NOT NULL,
            table_name text NOT NULL,
            pk jsonb NOT NULL,
            seeded jsonb,
            seeded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (schema_name, table_name, pk)
        );
        COMMENT ON TABLE dbtool.seeded_row IS 'Rows `dbtool seed` (sql/seed/) inserted, so `seed --clear` removes only them';
        COMMENT ON COLUMN dbtool.seeded_row.seeded IS
            'Every column as the seed inserted it; NULL: the key was taken when the seed ran (the row is not the seed''s)';
    END IF;
    IF got IS NOT NULL THEN
        INSERT INTO dbtool.seeded_row AS s (schema_name, table_name, pk, seeded)
        SELECT n.nspname, c.relname, (SELECT jsonb_object_agg(k, got -> k) FROM unnest(pk_cols) k), got
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl
        ON CONFLICT (schema_name, table_name, pk) DO UPDATE SET seeded = excluded.seeded, seeded_at = now();
    ELSIF found IS NOT NULL THEN  -- never turns a row recorded as the seed's into "not the seed's"
        INSERT INTO dbtool.seeded_row (schema_name, table_name, pk, seeded)
        SELECT n.nspname, c.relname, (SELECT jsonb_object_agg(k, found -> k) FROM unnest(pk_cols) k), NULL
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl
        ON CONFLICT DO NOTHING;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbtool_clear_seed(module text)
RETURNS TABLE (table_name text, removed bigint, kept_changed bigint, kept_not_seeded bigint, kept_referenced bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres' SET extra_float_digits = 1 AS $fn$
#variable_conflict use_column
DECLARE
    tabs regclass[];
    tbl regclass;
    i int;
    n bigint;
    total bigint;
    done bigint[];
    cond text;
    pk_of text[];
    unchanged text := 'NOT EXISTS (SELECT 1 FROM jsonb_each(s.seeded) e WHERE to_jsonb(x) -> e.key IS DISTINCT FROM e.value)';
BEGIN
    IF to_regclass('dbtool.seeded_row') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM dbtool.seeded_row s WHERE s.schema_name = module   -- records of tables dropped since
        AND to_regclass(format('%I.%I', s.schema_name, s.table_name)) IS NULL;
    SELECT coalesce(array_agg(DISTINCT format('%I.%I', s.schema_name, s.table_name)::regclass), '{}')
        INTO tabs FROM dbtool.seeded_row s WHERE s.schema_name = module;
    done := array_fill(0::bigint, ARRAY[coalesce(array_length(tabs, 1), 0)]);
    -- Lock every row recorded as the seed's first: a row that references one of them from now on waits
    -- for this transaction, and each statement below sees every reference committed before.
    FOR i IN 1 .. coalesce(array_length(tabs, 1), 0) LOOP
        tbl := tabs[i];
        pk_of := (SELECT k FROM pg_temp.dbtool_seed_keys(tbl) AS k LIMIT 1);
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s x, dbtool.seeded_row s, '
                       'jsonb_populate_record(NULL::%s, s.pk) p WHERE s.schema_name = $1 AND s.table_name = $2 '
                       'AND s.seeded IS NOT NULL AND %s FOR UPDATE OF x) l',
                       pg_temp.dbtool_seed_only(tbl), tbl,
                       pg_temp.dbtool_seed_match(pk_of, 'x', 'p'))
            INTO n USING module, (SELECT relname FROM pg_class WHERE oid = tbl);
    END LOOP;
    LOOP  -- children first: a row goes once nothing references it any more; repeat until a pass removes nothing
        total := 0;
        FOR i IN 1 .. coalesce(array_length(tabs, 1), 0) LOOP
            tbl := tabs[i];
            pk_of := (SELECT k FROM pg_temp.dbtool_seed_keys(tbl) AS k LIMIT 1);
            SELECT coalesce(string_agg(format(' AND NOT EXISTS (SELECT 1 FROM %s r WHERE %s)', f.conrelid::regclass,
                       (SELECT format('ROW(%s) = ROW(%s)', string_agg(format('r.%I', ra.attname), ', ' ORDER BY u.o),
                                      string_agg(format('x.%I', xa.attname), ', ' ORDER BY u.o))
                        FROM unnest(f.conkey, f.confkey) WITH ORDINALITY u(rk, xk, o)
                        JOIN pg_attribute ra ON ra.attrelid = f.conrelid AND ra.attnum = u.rk
                        JOIN pg_attribute xa ON xa.attrelid = f.confrelid AND xa.attnum = u.xk)), ''), '')
                INTO cond FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = tbl;
            EXECUTE format('DELETE FROM %s x USING dbtool.seeded_row s, jsonb_populate_record(NULL::%s, s.pk) p '
                           'WHERE s.schema_name = $1 AND s.table_name = $2 AND s.seeded IS NOT NULL AND %s AND %s%s',
                           pg_temp.dbtool_seed_only(tbl), tbl,
                           pg_temp.dbtool_seed_match(pk_of, 'x', 'p'), unchanged, cond)
                USING module, (SELECT relname FROM pg_class WHERE oid = tbl);
            GET DIAGNOSTICS n = ROW_COUNT;
            done[i] := done[i] + n;
            total := total + n;
        END LOOP;
        EXIT WHEN total = 0;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(tabs, 1), 0) LOOP
        tbl := tabs[i];
        pk_of := (SELECT k FROM pg_temp.dbtool_seed_keys(tbl) AS k LIMIT 1);
        table_name := tbl::text;
        removed := done[i];
        EXECUTE format('SELECT count(*) FILTER (WHERE s.seeded IS NOT NULL AND NOT (%s)), count(*) FILTER (WHERE s.seeded IS NULL), '
                       'count(*) FILTER (WHERE s.seeded IS NOT NULL AND %s) FROM %s x, dbtool.seeded_row s, '
                       'jsonb_populate_record(NULL::%s, s.pk) p WHERE s.schema_name = $1 AND s.table_name = $2 AND %s',
                       unchanged, unchanged, pg_temp.dbtool_seed_only(tbl), tbl,
                       pg_temp.dbtool_seed_match(pk_of, 'x', 'p'))
            INTO kept_changed, kept_not_seeded, kept_referenced USING module, (SELECT relname FROM pg_class WHERE oid = tbl);
        -- Forget rows that are gone; rows kept stay recorded, so a later clear judges them again.
        EXECUTE format('DELETE FROM dbtool.seeded_row s WHERE s.schema_name = $1 AND s.table_name = $2 AND NOT EXISTS '
                       '(SELECT 1 FROM %s x, jsonb_populate_record(NULL::%s, s.pk) p WHERE %s)',
                       pg_temp.dbtool_seed_only(tbl), tbl, pg_temp.dbtool_seed_match(pk_of, 'x', 'p'))
            USING module, (SELECT relname FROM pg_class WHERE oid = tbl);
        RETURN NEXT;
    END LOOP;
END
$fn$;
