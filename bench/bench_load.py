"""Load 200,000 crm.order_line rows four ways, side by side (issue 4).

  repository COPY loader   dbtool.repo.crm.order_line.load (cursor.copy + write_row)
  psycopg executemany      INSERT ... VALUES, psycopg 3's pipelined executemany
  SQLAlchemy ORM           add_all + commit on a mapping reflected from the database (the specs' way)
  psql \\copy              the same rows as a CSV file: the floor

Every approach loads the same rows into an empty order_line (customers and products exist
first); the table is truncated before each run, outside the timing. Fast approaches keep the
best of REPEAT runs. SQLAlchemy is a bench-only dependency (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import subprocess
import tempfile
from decimal import Decimal

from bench.common import report, scratch
from dbtool import migrate as migrate_lib
from dbtool.backup import _libpq_args
from dbtool.repo.crm import customer, order_line, product

N_ROWS = int(os.environ.get("BENCH_LOAD_ROWS", "200000"))
N_CUSTOMERS, N_PRODUCTS = 2000, 500
REPEAT = int(os.environ.get("BENCH_LOAD_REPEAT", "3"))
COLUMNS = ("customer_code", "product_key", "order_date", "doc_ref", "quantity", "amount_ht", "amount_ttc")


def make_rows(n: int) -> list[tuple]:
    rnd = random.Random(4)
    day0 = dt.date(2020, 1, 1)
    rows = []
    for i in range(n):
        ht = Decimal(rnd.randint(500, 50000)) / 100
        rows.append((f"C{rnd.randrange(N_CUSTOMERS):05d}", f"P{rnd.randrange(N_PRODUCTS):04d}",
                     day0 + dt.timedelta(days=rnd.randrange(1800)), f"INV-{i:07d}", rnd.randint(1, 12), ht,
                     (ht * Decimal("1.2")).quantize(Decimal("0.01"))))
    return rows


def setup(conn) -> None:
    customer.load(conn, ((f"C{i:05d}", f"c{i}@example.com") for i in range(N_CUSTOMERS)),
                  columns=("customer_code", "email"))
    product.load(conn, ((f"P{i:04d}", f"Product {i}") for i in range(N_PRODUCTS)),
                 columns=("product_key", "product_label"))
    conn.commit()


def truncate(conn) -> None:
    conn.execute("TRUNCATE crm.order_line")
    conn.commit()


def count(conn) -> int:
    return conn.execute("SELECT count(*) FROM crm.order_line").fetchone()[0]


def run_copy(conn, rows, binary: bool = False) -> None:
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


def best(conn, approaches: dict, repeat: int) -> dict[str, float]:
    """Best time of each approach (name -> (fn, args)), taking turns so machine noise hits all alike."""
    import time

    times = {name: float("inf") for name in approaches}
    for _ in range(repeat):
        for name, (fn, args) in approaches.items():
            truncate(conn)
            t0 = time.perf_counter()
            fn(*args)
            times[name] = min(times[name], time.perf_counter() - t0)
            assert count(conn) == N_ROWS
    return times


def run() -> None:
    rows = make_rows(N_ROWS)
    with scratch("load") as target:
        migrate_lib.migrate(target, ["crm"], say=lambda _m: None)
        with target.connect() as conn, tempfile.TemporaryDirectory() as tmp:
            setup(conn)
            dbname = conn.info.dbname
            path = os.path.join(tmp, "order_line.csv")
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(rows)
            results = list(best(conn, {
                "repository COPY loader (order_line.load)": (run_copy, (conn, rows)),
                "repository COPY loader, binary=True": (run_copy, (conn, rows, True)),
                "psql \\copy of a CSV file (floor)": (run_psql, (target, dbname, path)),
            }, REPEAT).items())
            results += best(conn, {"psycopg executemany": (run_executemany, (conn, rows))}, 1).items()
            try:
                orm = orm_session(target)
            except ImportError:
                print("SQLAlchemy not installed (pip install -e '.[bench]'): ORM skipped")
            else:
                results += best(conn, {"SQLAlchemy ORM add_all + commit": (run_orm, (orm, rows))}, 1).items()
                orm[0].dispose()
    report(f"Load {N_ROWS:,} crm.order_line rows (customers and products first)", results,
           baseline="repository COPY loader (order_line.load)")
    t = dict(results)
    floor = t["psql \\copy of a CSV file (floor)"] / t["repository COPY loader (order_line.load)"]
    print(f"  loader vs psql \\copy: {floor:.2f}x as fast (goal >= 1)")
    if "SQLAlchemy ORM add_all + commit" in t:
        orm_ratio = t["SQLAlchemy ORM add_all + commit"] / t["repository COPY loader (order_line.load)"]
        print(f"  loader vs ORM: {orm_ratio:.1f}x as fast (goal >= 8)")
