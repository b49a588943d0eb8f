"""The generic table core: shapes from the snapshot, CRUD, keyset pages, COPY, and value round trips."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbtool.paths import modules
from dbtool.repo import _generate, table_names, tables
from dbtool.repo.crm import audit_item, customer, order_line, product
from dbtool.repo.errors import InvalidValue, RepoError
from dbtool.repo.planning import store_clusters


def test_rows_generated_is_current():
    assert _generate.TARGET.read_text(encoding="utf-8") == _generate.render(), \
        "dbtool/repo/rows_generated.py is stale: run python -m dbtool.repo._generate"


def live_shapes(conn, module: str) -> dict[str, dict]:
    """{table: shape} of the migrated database, from information_schema (not the snapshot Table reads)."""
    shapes: dict[str, dict] = {}
    for table, column, nullable, default, identity in conn.execute(
            "SELECT table_name, column_name, is_nullable, column_default, is_identity FROM information_schema.columns"
            " WHERE table_schema = %s ORDER BY table_name, ordinal_position", (module,)):
        shape = shapes.setdefault(table, {"columns": [], "column": {}, "primary_key": (), "unique_keys": {}})
        shape["columns"].append(column)
        shape["column"][column] = (nullable == "YES", identity == "YES", default is not None)
    for table, kind, name, columns in conn.execute(
            "SELECT tc.table_name, tc.constraint_type, tc.constraint_name,"
            "       array_agg(k.column_name::text ORDER BY k.ordinal_position)"
            " FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage k ON (k.constraint_schema, k.constraint_name)"
            "      = (tc.constraint_schema, tc.constraint_name)"
            " WHERE tc.table_schema = %s AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            " GROUP BY tc.table_name, tc.constraint_type, tc.constraint_name", (module,)):
        if kind == "PRIMARY KEY":
            shapes[table]["primary_key"] = tuple(columns)
        else:
            shapes[table]["unique_keys"][name] = tuple(columns)
    return shapes


@pytest.mark.parametrize("module", modules())
def test_every_table_has_a_module_shaped_like_the_migrated_table(postgresql, module):
    live = live_shapes(postgresql, module)
    assert table_names(module) == sorted(live)
    for table, shape in live.items():
        mod = importlib.import_module(f"dbtool.repo.{module}.{table}")
        t = mod.T
        assert t.columns == tuple(shape["columns"]), t.qualified
        assert {c: (col.nullable, col.identity, col.has_default) for c, col in t.column.items()} == shape["column"]
        assert t.primary_key == shape["primary_key"], t.qualified
        assert t.unique_keys == shape["unique_keys"], t.qualified
        for name in ("get", "insert", "update", "delete", "page", "load"):
            assert callable(getattr(mod, name)), f"{t.qualified} lacks {name}"
        assert hasattr(mod, "upsert") == (t.natural_key is not None), t.qualified
        assert list(t.row.__dataclass_fields__) == shape["columns"], t.qualified
    assert sorted(tables([module])) == sorted(f"{module}.{t}" for t in live)


def test_a_table_shape_matches_its_sql_file():
    """Hard facts from sql/planning/040_store_clusters.sql and sql/crm/070_order_line.sql."""
    t = store_clusters.T
    assert t.columns == ("cluster_id", "cluster_name", "description", "created_at")
    assert t.primary_key == ("cluster_id",) and t.unique_keys == {} and t.natural_key == ("cluster_id",)
    assert [c for c in t.columns if t.column[c].nullable] == ["description"]
    assert [c for c in t.columns if t.column[c].has_default] == ["created_at"]
    assert t.column["cluster_name"].type == "character varying(100)"
    o = order_line.T
    assert o.columns[0] == "id" and o.column["id"].identity and o.primary_key == ("id",)
    assert o.natural_key is None and "id" not in o.insert_columns


def test_statements_are_composed_once_per_shape():
    first = product.T._stmt("get", ("product_key",))
    assert product.T._stmt("get", ("product_key",)) is first


def _product(conn, key="P1", **kw):
    return product.insert(conn, product_key=key, product_label=f"label {key}", **kw)


def test_insert_get_update_upsert_delete(postgresql):
    conn = postgresql
    row = _product(conn, family_crm="Red", season_tags=["summer"])
    assert isinstance(row, product.T.row) and row.season_tags == ["summer"] and row.premium_tier == 0
    assert product.get(conn, product_key="P1") == row
    assert product.get(conn, product_label="label P1") == row           # any unique key
    assert product.get(conn, product_key="nope") is None
    upd = product.update(conn, product_key="P1", cepage="Pinot Noir")
    assert (upd.cepage, upd.family_crm, upd.season_tags) == ("Pinot Noir", "Red", ["summer"])  # only cepage changed
    assert product.update(conn, product_key="nope", cepage="x") is None
    again = product.upsert(conn, product_key="P1", product_label="label P1", premium_tier=2)
    again = product.upsert(conn, product_key="P1", product_label="label P1", premium_tier=2)
    assert again.premium_tier == 2 and again.cepage == "Pinot Noir"
    assert conn.execute("SELECT count(*) FROM crm.product").fetchone()[0] == 1
    assert product.delete(conn, product_key="P1").product_key == "P1"
    assert product.get(conn, product_key="P1") is None and product.delete(conn, product_key="P1") is None


def test_bad_calls_are_refused_clearly(postgresql):
    with pytest.raises(InvalidValue, match="no column colour"):
        product.insert(postgresql, product_key="P", product_label="L", colour="red")
    with pytest.raises(InvalidValue, match="give the key"):
        product.get(postgresql, family_crm="Red")
    with pytest.raises(RepoError, match="no natural key"):
        order_line.T.upsert(postgresql, customer_code="C")
    with pytest.raises(RepoError, match="no index"):
        product.page(postgresql, by="cepage")


def _lines(conn, n):
    customer.insert(conn, customer_code="C1")
    _product(conn)
    rows = [("C1", "P1", dt.date(2024, 1, 1) + dt.timedelta(days=i % 7), f"D{i}", 1, "10.00", None)
            for i in range(n)]
    return order_line.load(conn, rows, columns=("customer_code", "product_key", "order_date", "doc_ref",
                                                "quantity", "amount_ht", "amount_ttc"))


def test_copy_load_returns_the_count_and_pages_cover_every_row_once(postgresql):
    conn = postgresql
    assert _lines(conn, 25) == 25
    seen, after = [], None
    while True:
        pg = order_line.page(conn, by="order_date", customer_code="C1", after=after, limit=10)
        seen += pg.rows
        if pg.next is None:
            break
        after = pg.next
    assert len(seen) == 25 and len({r.id for r in seen}) == 25
    assert [(r.order_date, r.id) for r in seen] == sorted((r.order_date, r.id) for r in seen)
    assert order_line.page(conn, by="order_date", customer_code="nobody").rows == []


def test_keyset_pages_skip_rows_whose_sort_column_is_null(postgresql):
    _product(postgresql, "A", family_crm="Red")
    _product(postgresql, "B")
    assert [r.product_key for r in product.page(postgresql, by="family_crm").rows] == ["A"]


def test_a_failing_copy_stores_nothing(postgresql):
    conn = postgresql
    customer.insert(conn, customer_code="C1")
    _product(conn)
    conn.commit()
    rows = [("C1", "P1", dt.date(2024, 1, 1), "ok", 1, "1.00", None), ("C1", "P1", dt.date(2024, 1, 2), "a\x00b",
                                                                        1, "1.00", None)]
    with pytest.raises(InvalidValue, match="NUL"):
        order_line.load(conn, rows, columns=("customer_code", "product_key", "order_date", "doc_ref", "quantity",
                                             "amount_ht", "amount_ttc"))
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM crm.order_line").fetchone()[0] == 0


def test_nul_byte_is_refused_and_nothing_is_stored(postgresql):
    with pytest.raises(InvalidValue, match="NUL"):
        customer.insert(postgresql, customer_code="C\x00")
    with pytest.raises(InvalidValue, match="NUL"):
        _product(postgresql, "J", season_tags=["su\x00mmer"])
    assert postgresql.execute("SELECT count(*) FROM crm.customer").fetchone()[0] == 0
    assert postgresql.execute("SELECT count(*) FROM crm.product").fetchone()[0] == 0


TRICKY = ["it's", 'say "hi"', "back\\slash\\n", "\\x00 is not a NUL", "naïve café 日本語 🍷", "a" * 100_000,
          "'; DROP TABLE crm.customer; --", "%s %(x)s {}", "\t\n\r"]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_tricky_strings_round_trip_through_insert_update_and_copy(postgresql, text):
    conn = postgresql
    customer.insert(conn, customer_code="C1", first_name=text[:255])
    assert customer.get(conn, customer_code="C1").first_name == text[:255]
    # text column without a length limit, through insert, partial update and COPY:
    conn.execute("INSERT INTO crm.reco_run (run_id, config_hash) VALUES ('R', repeat('a', 64))")
    a = audit_item.insert(conn, run_id="R", severity="INFO", flag_code="F", message=text, details={"t": text})
    assert audit_item.get(conn, id=a.id).message == text and audit_item.get(conn, id=a.id).details == {"t": text}
    assert audit_item.update(conn, id=a.id, message=text + "!").message == text + "!"
    assert audit_item.load(conn, [("R", "INFO", "G", text, {"t": text})],
                           columns=("run_id", "severity", "flag_code", "message", "details")) == 1
    assert audit_item.page(conn, run_id="R").rows[-1].message == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    max_size=300))
def test_any_text_without_nul_round_trips(postgresql, text):
    key = "H" + str(abs(hash(text)))
    row = customer.upsert(postgresql, customer_code=key, email=text)
    assert row.email == text and customer.get(postgresql, customer_code=key).email == text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.text(max_size=20), suffix=st.text(max_size=20))
def test_any_text_with_nul_is_refused(postgresql, prefix, suffix):
    with pytest.raises(InvalidValue, match="cannot contain a NUL byte"):
        customer.insert(postgresql, customer_code="N", email=prefix + "\x00" + suffix)
    assert customer.get(postgresql, customer_code="N") is None


def test_binary_copy_loads_the_same_rows(postgresql):
    conn = postgresql
    customer.insert(conn, customer_code="C1")
    _product(conn)
    from decimal import Decimal
    rows = [("C1", "P1", dt.date(2024, 1, 1), "naïve 'q' \\ ", 2, Decimal("10.50"), None)]
    cols = ("customer_code", "product_key", "order_date", "doc_ref", "quantity", "amount_ht", "amount_ttc")
    assert order_line.load(conn, rows, columns=cols, binary=True) == 1
    assert order_line.load(conn, rows, columns=cols) == 1
    a, b = order_line.page(conn, customer_code="C1", by="order_date").rows
    expected = (rows[0][3], Decimal("10.50"), 2)
    assert (a.doc_ref, a.amount_ht, a.quantity) == (b.doc_ref, b.amount_ht, b.quantity) == expected


def test_upsert_refuses_a_null_natural_key_and_page_a_pinned_primary_key(postgresql):
    from dbtool.repo.chatbot import messages
    from dbtool.repo.crm import product
    from dbtool.repo.errors import InvalidValue, RepoError

    with pytest.raises(InvalidValue, match="not null"):
        messages.upsert(postgresql, message_id=None, session_id=1, role="user", content="x")
    with pytest.raises(RepoError, match="use get"):
        product.page(postgresql, product_key="P1")


def test_iterate_returns_every_row_across_pages(postgresql):
    from dbtool.repo.crm import customer

    customer.load(postgresql, ((f"C{i:04d}", f"c{i}@x.test") for i in range(25)), columns=("customer_code", "email"))
    got = [c.customer_code for c in customer.T.iterate(postgresql, page_size=7)]
    assert got == [f"C{i:04d}" for i in range(25)]
