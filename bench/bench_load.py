"""Load 200,000 crm.order_line rows (two foreign keys, four indexes) every way, side by side (issue 15).

  order_line.load            the repository loader's default: binary COPY, column types set beforehand
                             (copy.set_types), the rows streamed to psycopg's C dumpers with no Python per row
  order_line.load, text      binary=False: text COPY, PostgreSQL parses every value
  psql \\copy                 the same rows as a CSV file (a process: start, connect, read, send)
  psycopg executemany        INSERT ... VALUES, psycopg 3's pipelined executemany
  SQLAlchemy ORM             add_all + commit on a mapping reflected from the database (the specs' way)

and the floor: PostgreSQL's own work, the same binary COPY stream encoded beforehand and only sent,
  - into crm.order_line itself (foreign key checks, four indexes, WAL): no client can load faster;
  - into a copy without the foreign keys (indexes kept): what the FK checks cost;
  - into an UNLOGGED copy without foreign keys or indexes: heap and parsing only.

Every approach loads the same rows into an empty table (customers and products exist first); before
each run, outside the timing, the tables are truncated and a CHECKPOINT flushes the previous run's
pages (autovacuum is off on these scratch tables: an autoanalyze after one load would run during the
next). The fast approaches take turns in an order that rotates each round, best of REPEAT (5);
executemany and the ORM run once. SQLAlchemy is a bench-only dependency (`pip install -e '.[bench]'`).
Goals (issue 15): the loader at least as fast as psql \\copy, and at least 8x as fast as the ORM.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.copy import LibpqWriter

from bench.common import figure, goal, report, scratch, size, tiny
from dbtool import migrate as migrate_lib
from dbtool.backup import _libpq_args
from dbtool.repo.crm import customer, order_line, product

TINY = tiny()
N_ROWS = 300 if TINY else int(os.environ.get("BENCH_LOAD_ROWS", "200000"))
N_CUSTOMERS, N_PRODUCTS = (50, 20) if TINY else (2000, 500)
REPEAT = 1 if TINY else int(os.environ.get("BENCH_LOAD_REPEAT", "5"))
COLUMNS = ("customer_code", "product_key", "order_date", "doc_ref", "quantity", "amount_ht", "amount_ttc")

LOADER = "order_line.load (binary COPY, set types)"
TEXT = "order_line.load(binary=False) (text COPY)"
PSQL = "psql \\copy of a CSV file"
FLOOR = "floor: same COPY pre-encoded, only sent"
NO_FK = "floor without the foreign keys"
BARE = "floor, UNLOGGED, no FKs, no indexes"
MANY = "psycopg executemany"
ORM = "SQLAlchemy ORM add_all + commit"
TABLES = ("crm.order_line", "crm.order_line_no_fk", "crm.order_line_bare")


def make_rows(n: int) -> list[tuple]:
    rnd = random.Random(4)
    day0 = dt.date(2020, 1, 1)
    rows = []
    for i in range(n):
        ht = Decimal(rnd.randint(500, 50000)) / 100
        rows.append((f"C{rnd.randrange(N_CUSTOMERS):05d}", f"P{rnd.randrange(N_PRODUCTS):04d}",
                     day0 + dt.timedelta(days=rnd.randrange(1800)), f"INV-{i:07d}", rnd.randint(1, 12), ht,
                     None if i % 10 == 0 else (ht * Decimal("1.2")).quantize(Decimal("0.01"))))
    return rows


def setup(conn) -> None:
    customer.load(conn, ((f"C{i:05d}", f"c{i}@example.com") for i in range(N_CUSTOMERS)),
                  columns=("customer_code", "email"))
    product.load(conn, ((f"P{i:04d}", f"Product {i}") for i in range(N_PRODUCTS)),
                 columns=("product_key", "product_label"))
    # The floor's tables: the same columns and defaults; without the FKs (indexes kept); bare and UNLOGGED.
    conn.execute("CREATE TABLE crm.order_line_no_fk (LIKE crm.order_line INCLUDING ALL)")
    conn.execute("CREATE UNLOGGED TABLE crm.order_line_bare"
                 " (LIKE crm.order_line INCLUDING DEFAULTS INCLUDING IDENTITY)")
    # No autovacuum on the loaded tables of this scratch database: after each load, an autoanalyze of
    # 200,000 new rows would otherwise run during the next approach's load, and slow it.
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    conn.commit()


def truncate(conn) -> None:
    conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    conn.commit()


def count(conn) -> int:
    return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)


def copy_sql(table: str) -> str:
    return f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def encode(conn, rows) -> list[bytes]:
    """The loader's binary COPY stream for `rows` (same types, same dumpers), captured while it loads
    the bare table once: what the floor sends."""

    class Capture(LibpqWriter):
        def write(self, data) -> None:
            chunks.append(bytes(data))
            super().write(data)

    chunks: list[bytes] = []
    types = order_line.T.copy_types(COLUMNS)
    assert types is not None
    with conn.cursor() as cur, cur.copy(copy_sql("crm.order_line_bare"), writer=Capture(cur)) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
    conn.commit()
    truncate(conn)
    return chunks


def dump_time(conn, rows) -> float:
    """The client's share of the loader: psycopg dumping every value in binary as its column's type, alone."""
    types = order_line.T.copy_types(COLUMNS)
    assert types is not None
    tx = Transformer(conn)
    tx.set_dumper_types([conn.adapters.types.get_oid(t) for t in types], pq.Format.BINARY)
    formats = [PyFormat.BINARY] * len(types)
    t0 = time.perf_counter()
    for row in rows:
        tx.dump_sequence(row, formats)
    return time.perf_counter() - t0


def send(conn, table: str, chunks: list[bytes]) -> None:
    with conn.cursor() as cur, cur.copy(copy_sql(table)) as copy:
        for chunk in chunks:
            copy.write(chunk)
    conn.commit()


def run_copy(conn, rows, binary: bool | None = None) -> None:
    assert order_line.load(conn, rows, columns=COLUMNS, binary=binary) == len(rows)
    conn.commit()


def run_executemany(conn, rows) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO crm.order_line (customer_code, product_key, order_date, doc_ref, quantity,"
                        " amount_ht, amount_ttc) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    conn.commit()


def orm_session(target):
    from sqlalchemy import MetaData, Table, create_engine
    from sqlalchemy.orm import Session, registry

    engine = create_engine("postgresql+psycopg://", creator=lambda: target.connect(application_name="bench-orm"))
    table = Table("order_line", MetaData(), schema="crm", autoload_with=engine)

    class OrderLine:  # mapped imperatively on the reflected table: nothing typed twice
        pass

    registry().map_imperatively(OrderLine, table)
    return engine, Session, OrderLine


def run_orm(orm, rows) -> None:
    engine, Session, OrderLine = orm
    with Session(engine) as session:
        session.add_all([OrderLine(**dict(zip(COLUMNS, r))) for r in rows])
        session.commit()


def run_psql(target, dbname: str, path: str) -> None:
    cmd = f"\\copy crm.order_line ({', '.join(COLUMNS)}) FROM '{path}' WITH (FORMAT csv)"
    args, env = _libpq_args(target, dbname)  # the password travels in PGPASSWORD, never on the command line
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", cmd, *args], check=True, env=env)


def settle(conn) -> None:
    """Before each timed run: empty tables, and the previous run's dirty pages and WAL flushed, so no run
    pays for its predecessor's (CHECKPOINT needs superuser or pg_checkpoint; without it, only the rotation
    of best() spreads that cost)."""
    truncate(conn)
    conn.autocommit = True
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass
    finally:
        conn.autocommit = False


def best(conn, approaches: dict, repeat: int) -> dict[str, float]:
    """Best time of each approach (name -> (fn, args)), taking turns so machine noise hits all alike;
    the order rotates each round, so no approach always follows the same one."""
    times = {name: float("inf") for name in approaches}
    names = list(approaches)
    for round_ in range(repeat):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            fn, args = approaches[name]
            settle(conn)
            t0 = time.perf_counter()
            fn(*args)
            times[name] = min(times[name], time.perf_counter() - t0)
            assert count(conn) == N_ROWS, name
    return times


def run() -> None:
    rows = make_rows(N_ROWS)
    for name, value in (("rows", N_ROWS), ("customers", N_CUSTOMERS), ("products", N_PRODUCTS), ("repeat", REPEAT)):
        size("load", name, value)
    with scratch("load") as target:
        migrate_lib.migrate(target, ["crm"], say=lambda _m: None)
        with target.connect() as conn, tempfile.TemporaryDirectory() as tmp:
            setup(conn)
            assert order_line.T.binary_copy(conn, rows[0], columns=COLUMNS), "the bench's rows must take the default"
            chunks = encode(conn, rows)
            dbname = conn.info.dbname
            path = os.path.join(tmp, "order_line.csv")
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(rows)
            fast = {
                LOADER: (run_copy, (conn, rows)),
                TEXT: (run_copy, (conn, rows, False)),
                FLOOR: (send, (conn, "crm.order_line", chunks)),
                NO_FK: (send, (conn, "crm.order_line_no_fk", chunks)),
                BARE: (send, (conn, "crm.order_line_bare", chunks)),
            }
            if shutil.which("psql"):
                fast[PSQL] = (run_psql, (target, dbname, path))
            else:
                print("psql is not installed: psql \\copy skipped")
            t = best(conn, fast, REPEAT)
            t_dump = min(dump_time(conn, rows) for _ in range(REPEAT))
            t.update(best(conn, {MANY: (run_executemany, (conn, rows))}, 1))
            try:
                orm = orm_session(target)
            except ImportError:
                print("SQLAlchemy not installed (pip install -e '.[bench]'): ORM skipped")
            else:
                t.update(best(conn, {ORM: (run_orm, (orm, rows))}, 1))
                orm[0].dispose()
    order = [LOADER, TEXT, PSQL, MANY, ORM, FLOOR, NO_FK, BARE]
    report(f"Load {N_ROWS:,} crm.order_line rows (2 foreign keys, 4 indexes; customers and products first)",
           [(n, t[n]) for n in order if n in t], baseline=LOADER)
    for n in order:
        if n in t:
            figure("load", f"rows/s: {n}", round(N_ROWS / t[n]))
    figure("load", "client: dumping the values in binary, alone (s)", round(t_dump, 4))
    floor_share = t[FLOOR] / t[LOADER]
    print(f"  PostgreSQL is the floor: the server's own work on these rows (the same COPY, encoded beforehand) "
          f"takes {t[FLOOR]:.3f} s, {floor_share:.0%} of the loader's {t[LOADER]:.3f} s; of it, the foreign key "
          f"checks cost {max(t[FLOOR] - t[NO_FK], 0):.3f} s and the four indexes with WAL "
          f"{max(t[NO_FK] - t[BARE], 0):.3f} s (an UNLOGGED table without either: {t[BARE]:.3f} s). The loader's "
          f"client work, psycopg dumping the values in binary, takes "
          f"{t_dump:.3f} s alone: on an idle second core it overlaps the server's")
    floor_note = f"floor: PostgreSQL's own work is {floor_share:.2f}x the loader's time (FK checks, indexes, WAL)"
    if PSQL in t:
        goal("load", "order_line.load vs psql \\copy (speed)", t[PSQL] / t[LOADER], ">=", 1.0,
             note=None if t[PSQL] >= t[LOADER] else
             f"{floor_note}, psql's {t[PSQL] / t[FLOOR]:.2f}x; the loader's own dumping is {t_dump:.3f} s")
    if ORM in t:
        ratio = t[ORM] / t[LOADER]
        goal("load", "order_line.load vs SQLAlchemy ORM (speed)", ratio, ">=", 8.0,
             note=None if ratio >= 8 else
             f"{floor_note}; at the floor the ratio would be {t[ORM] / t[FLOOR]:.1f}x at most")
