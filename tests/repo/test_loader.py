"""The COPY loader (Table.load, e.g. order_line.load) on the real server: what is stored equals the input.

The default path is binary COPY with the columns' types set beforehand; the first row decides between it
and text COPY. Both must store the same values as the input (numeric, dates, timestamps with time
zones, NULLs, JSON, enums, text), and the same as each other where both apply.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dbtool.repo.crm import audit_item, customer, order_line, product
from dbtool.repo.errors import InvalidValue
from dbtool.repo.infra import agents

COLS = ("customer_code", "product_key", "order_date", "doc_ref", "quantity", "amount_ht", "amount_ttc", "created_at")
UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NOON = dt.datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def conn(postgresql):
    customer.load(postgresql, ((f"C{i}", f"c{i}@x.test") for i in range(5)), columns=("customer_code", "email"))
    product.load(postgresql, ((f"P{i}", f"Product {i}") for i in range(5)), columns=("product_key", "product_label"))
    return postgresql


def typed_rows(n: int, seed: int = 7) -> list[tuple]:
    """Rows of the columns' Python types, with NULLs, negative and extreme values, several time zones."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        ht = Decimal(rnd.randint(-99_999_999, 999_999_999)) / 100
        at = dt.datetime(2024, 3, 31, 0, 59, 59, rnd.randrange(1_000_000), tzinfo=UTC) + dt.timedelta(hours=i)
        rows.append((f"C{i % 5}", f"P{i % 3}", dt.date(1999, 12, 31) + dt.timedelta(days=rnd.randrange(20_000)),
                     None if i % 4 == 0 else f"INV-{i:06d} naïve 'q' \\ \t",
                     rnd.randint(-2**31, 2**31 - 1), ht, None if i % 3 == 0 else ht * 2,
                     at.astimezone(PARIS) if i % 2 else at))
    return rows


def stored(conn, cols=COLS) -> list[tuple]:
    return conn.execute(f"SELECT {', '.join(cols)} FROM crm.order_line ORDER BY id").fetchall()


def test_the_default_is_binary_copy_and_what_is_stored_equals_the_input(conn):
    rows = typed_rows(500)
    assert order_line.T.binary_copy(conn, rows[0], columns=COLS)
    assert order_line.load(conn, iter(rows), columns=COLS) == 500  # any iterable, counted as it streams
    assert stored(conn) == rows  # Decimal == Decimal, aware datetimes compare as instants, None as NULL


def test_text_copy_stores_the_same_rows(conn):
    rows = typed_rows(200)
    assert order_line.load(conn, rows, columns=COLS, binary=False) == 200
    as_text = stored(conn)
    conn.execute("TRUNCATE crm.order_line")
    assert order_line.load(conn, rows, columns=COLS) == 200
    assert stored(conn) == as_text == rows


def test_numeric_is_rounded_to_the_column_scale_by_postgresql_in_both_formats(conn):
    values = [Decimal("1.005"), Decimal("-1.005"), Decimal("2.675"), Decimal("0.004999"), Decimal("9999999999.994"), 7]
    rows = [("C1", "P1", dt.date(2024, 1, 1), None, 1, v, None, dt.datetime(2024, 1, 1, tzinfo=UTC)) for v in values]
    order_line.load(conn, rows, columns=COLS)
    order_line.load(conn, rows, columns=COLS, binary=False)
    got = [r[0] for r in conn.execute("SELECT amount_ht FROM crm.order_line ORDER BY id")]
    want = [Decimal("1.01"), Decimal("-1.01"), Decimal("2.68"), Decimal("0.00"), Decimal("9999999999.99"),
            Decimal("7.00")]
    assert got == want + want


def test_a_first_row_of_strings_goes_as_text_copy_and_postgresql_parses_it(conn):
    rows = [("C1", "P1", "2024-02-29", "D1", "3", "10.50", None, "2024-02-29 23:30:00+01")]
    assert not order_line.T.binary_copy(conn, rows[0], columns=COLS)
    assert order_line.load(conn, rows, columns=COLS) == 1
    assert stored(conn) == [("C1", "P1", dt.date(2024, 2, 29), "D1", 3, Decimal("10.50"), None,
                             dt.datetime(2024, 2, 29, 22, 30, tzinfo=UTC))]


def test_naive_timestamps_go_as_text_in_the_session_time_zone_as_an_insert_takes_them(conn):
    conn.execute("SET TIME ZONE 'Europe/Paris'")
    naive = dt.datetime(2024, 7, 1, 12, 0)
    row = ("C1", "P1", dt.date(2024, 7, 1), "naive", 1, Decimal("1.00"), None, naive)
    assert not order_line.T.binary_copy(conn, row, columns=COLS)
    order_line.load(conn, [row], columns=COLS)
    order_line.T.insert(conn, **dict(zip(COLS, row)))
    a, b = (r[0] for r in conn.execute("SELECT created_at FROM crm.order_line ORDER BY id"))
    assert a == b == dt.datetime(2024, 7, 1, 10, 0, tzinfo=UTC)


def test_a_later_row_that_does_not_fit_binary_stores_nothing(conn):
    rows = typed_rows(3)
    rows.append(("C1", "P1", dt.date(2024, 1, 1), None, 1, "10.00", None, dt.datetime(2024, 1, 1, tzinfo=UTC)))
    conn.commit()
    with pytest.raises(InvalidValue, match=r"row 4 does not fit binary COPY"):
        order_line.load(conn, rows, columns=COLS)
    conn.rollback()
    assert order_line.T.count(conn) == 0
    assert order_line.load(conn, rows, columns=COLS, binary=False) == 4  # text COPY takes either


@pytest.mark.parametrize("binary", [None, False])
def test_nul_bytes_are_refused_and_nothing_is_stored(conn, binary):
    conn.commit()
    rows = typed_rows(2) + [("C1", "P1", dt.date(2024, 1, 1), "a\x00b", 1, Decimal(1), None, NOON)]
    with pytest.raises(InvalidValue, match="NUL"):
        order_line.load(conn, rows, columns=COLS, binary=binary)
    conn.rollback()
    assert order_line.T.count(conn) == 0
    conn.execute("INSERT INTO crm.reco_run (run_id, config_hash) VALUES ('R', repeat('a', 64))")
    conn.commit()
    with pytest.raises(InvalidValue, match="NUL"):
        audit_item.load(conn, [("R", "INFO", "F", {"t": "x\x00"})], columns=("run_id", "severity", "flag_code",
                                                                             "details"), binary=binary)
    conn.rollback()


def test_foreign_keys_are_checked(conn):
    conn.commit()
    rows = typed_rows(3) + [("NOBODY", "P1", dt.date(2024, 1, 1), None, 1, Decimal(1), None, NOON)]
    with pytest.raises(Exception, match="order_line_customer_code_fkey"):
        order_line.load(conn, rows, columns=COLS)
    conn.rollback()
    assert order_line.T.count(conn) == 0


def test_json_columns_take_python_values_in_both_formats(conn):
    conn.execute("INSERT INTO crm.reco_run (run_id, config_hash) VALUES ('R', repeat('a', 64))")
    details = [{"a": [1, 2.5, None, True], "é": {"x": "'\"\\"}}, ["list"], "a string", 3, None]
    cols = ("run_id", "severity", "flag_code", "message", "details")
    rows = [("R", "INFO", f"F{i}", None, d) for i, d in enumerate(details) if d is not None]
    assert audit_item.T.binary_copy(conn, rows[0], columns=cols)
    audit_item.load(conn, rows, columns=cols)
    audit_item.load(conn, rows, columns=cols, binary=False)
    got = [r[0] for r in conn.execute("SELECT details FROM crm.audit_item ORDER BY id")]
    assert got == [r[4] for r in rows] * 2


def test_enum_columns_go_in_binary_as_their_label(conn):
    cols = ("type", "name", "status", "capabilities", "last_heartbeat")
    at = dt.datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    labels = agents.STATUSES
    rows = [("recommendation" if "recommendation" in _agent_types(conn) else _agent_types(conn)[0], f"a{i}", s,
             {"n": i}, at) for i, s in enumerate(labels)]
    assert agents.T.copy_types(cols)[0] == "text"
    assert agents.T.binary_copy(conn, rows[0], columns=cols)
    assert agents.load(conn, rows, columns=cols) == len(labels)
    got = conn.execute("SELECT type::text, name, status::text, capabilities, last_heartbeat FROM infra.agents"
                       " ORDER BY name").fetchall()
    assert got == sorted(rows, key=lambda r: r[1])
    with pytest.raises(Exception, match="invalid input value for enum"):
        agents.load(conn, [(rows[0][0], "z", "no such status", {}, None)], columns=cols)


def _agent_types(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT unnest(enum_range(NULL::infra.agent_type))::text")]


def test_an_empty_input_loads_nothing(conn):
    assert order_line.load(conn, [], columns=COLS) == 0
    assert order_line.load(conn, iter(()), columns=COLS) == 0
