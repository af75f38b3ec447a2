"""Transform in chunks: the same files whatever the chunk size, only the columns the mapping reads,
lines merged in the extract step's sequence, and bills equal to rule-by-rule evaluation."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath
from hypothesis import given
from hypothesis import strategies as st

from erpsync.mapping.compile import MappingError, compile_mapping
from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles, read_jsonl, read_parquet, write_parquet
from erpsync.steps.extract import EXTRA_COLUMN
from erpsync.steps.transform import TransformError, line_sort_key, transform
from erpsync.windows import Window, parse_datetime
from tests.conftest import run_of

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
API = SCHEME.source.api
KEYS = SCHEME.source.keys
WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
NOW = datetime(2026, 11, 2)
QUARANTINE_COLUMNS = ["order_id", "order_no", "line_id", "suite", "rule", "check", "column", "value"]
# a value no reader can turn into Python (year 10000): reading such a column fails the transform
UNREADABLE = pa.array([253402300800 * 10**6], pa.timestamp("us"))


def _order(n: int, **fields: str | None) -> dict[str, str | None]:
    return {
        "stockout_id": str(5000 + n),
        "order_no": f"CK{n:04d}",
        "stockout_no": f"CK{n:04d}",
        "consign_time": "2026-11-01 10:00:00",
        "shop_no": ["TMALL001", "JD002"][n % 2],
        "warehouse_no": "WH001",
        **fields,
    }


def _line(rec_id: str, order: dict, count: str = "1.0000", price: str = "10.0000") -> dict[str, str | None]:
    return {
        "rec_id": rec_id,
        "stockout_id": order["stockout_id"],
        "spec_no": f"SKU-{rec_id}",
        "goods_count": count,
        "sell_price": price,
        "src_tid": "T" + order["stockout_id"],
        "product_date": "0000-00-00 00:00:00",
    }


def _write(rows: list[dict], fields: list[str], path, unreadable: str) -> None:
    """As extract writes: every field as text, then ``extra``, in small row groups; plus one column
    the mapping does not read, holding values that cannot be read."""
    schema = pa.schema([(f, pa.string()) for f in [*fields, EXTRA_COLUMN]])
    table = pa.Table.from_pylist([{f: r.get(f) for f in fields} for r in rows], schema=schema)
    column = schema.get_field_index(unreadable)
    table = table.set_column(column, unreadable, pa.chunked_array([UNREADABLE.take([0] * len(rows))]))
    with path.open("wb") as fh:
        pq.write_table(table, fh, row_group_size=4)


def _stage(root, orders: list[dict], lines: list[dict], quarantined: list[str]) -> RunFiles:
    files = RunFiles(ObjectStoragePath(root.as_uri()), SCHEME.dag_id, WINDOW)
    files.dir.mkdir(parents=True, exist_ok=True)
    _write(orders, list(API.order_fields), files.orders, unreadable="receiver_name")
    _write(
        lines, [API.order_key, *[f for f in API.line_fields if f != API.order_key]], files.lines, unreadable="barcode"
    )
    report = pd.DataFrame({"order_id": quarantined}, columns=QUARANTINE_COLUMNS).astype("string")
    write_parquet(report, files.quarantine)
    return files


@pytest.fixture
def window(tmp_path):
    orders, lines, quarantined = [], [], []
    for n in range(60):
        order = _order(n)
        if n == 33:
            order["order_no"] = None
        orders.append(order)
        if n == 13:
            continue  # an order without lines
        if n == 5:
            ids = ["10", "9", "11"]  # "10" < "9" as text: numbers sort as numbers
        elif n == 8:
            ids = ["A2", "7", "A1"]  # ids that are not numbers come after those that are
        else:
            ids = [str(100 * n + k) for k in range(1 if n % 3 == 0 else 3)]
        lines += [_line(i, order, count="two" if n == 20 and k == 1 else "1.0000") for k, i in enumerate(ids)]
        if n % 7 == 2:
            quarantined.append(order["stockout_id"])
    return _stage(tmp_path, orders, lines, quarantined), orders, quarantined


def test_small_chunks_give_the_same_files_as_one_chunk(window):
    files, orders, quarantined = window
    runs = []
    for chunk_rows in (7, 1, 100_000):
        result = transform(run_of(SCHEME, files), chunk_rows=chunk_rows)
        with files.bills.open("rb") as fh:
            runs.append((result, fh.read(), read_parquet(files.unmapped)))
    (result, bills_bytes, unmapped), *others = runs
    for other_result, other_bills, other_unmapped in others:
        assert other_result == result and other_bills == bills_bytes
        pd.testing.assert_frame_equal(other_unmapped, unmapped)

    assert result.skipped_quarantined == len(quarantined) == 9
    assert unmapped.to_dict("records") == [
        {"order_id": "5013", "order_no": "CK0013", "field": "FEntity", "message": "the order has no lines"},
        {"order_id": "5020", "order_no": "CK0020", "field": "FMustQty", "message": "not a decimal number: 'two'"},
        {"order_id": "5033", "order_no": None, "field": "FBillNo", "message": "the bill number is empty"},
    ]
    bills = read_jsonl(files.bills)
    expected = [
        o["stockout_id"]
        for o in orders
        if o["stockout_id"] not in quarantined and o["stockout_id"] not in unmapped["order_id"].tolist()
    ]
    assert [b["order_id"] for b in bills] == expected and result.bills == len(expected) == 48
    assert set(bills[0]) == {"bill_no", "order_id", "order_no", "model"}
    by_id = {b["order_id"]: b for b in bills}
    materials = lambda order_id: [e["FMaterialID"]["FNumber"] for e in by_id[order_id]["model"]["FEntity"]]  # noqa: E731
    assert materials("5005") == ["SKU-9", "SKU-10", "SKU-11"]
    assert materials("5008") == ["SKU-7", "SKU-A1", "SKU-A2"]
    assert materials("5004") == ["SKU-400", "SKU-401", "SKU-402"]
    assert by_id["5004"]["model"]["F_ora_Text_ysdh"] == "T5004"


def test_lines_out_of_the_orders_sequence_fail_before_any_file_is_written(tmp_path):
    first, second = _order(1), _order(2)
    # the second order's line before the first's: a chunk of one order meets a line it cannot place
    files = _stage(tmp_path, [first, second], [_line("2", second), _line("1", first)], [])
    with pytest.raises(TransformError, match=r"line '1' of order '5001'"):
        transform(run_of(SCHEME, files), chunk_rows=1)
    assert not files.bills.exists() and not files.unmapped.exists()
    # in one chunk the same files are read whole: nothing is out of place
    assert transform(run_of(SCHEME, files)).bills == 2


def test_a_line_whose_order_is_not_staged_fails_the_step(tmp_path):
    order = _order(1)
    files = _stage(tmp_path, [order], [_line("1", order), _line("2", _order(9))], [])
    with pytest.raises(TransformError, match="'5009'"):
        transform(run_of(SCHEME, files))


def test_the_transform_reads_only_the_columns_the_mapping_uses(edited_scheme):
    # the staged files of the tests above hold unreadable columns; here, what the mapping asks for
    assert compile_mapping(SCHEME).source_columns() == (
        {"order_no", "consign_time", "shop_no", "warehouse_no", "stockout_no"},
        {"src_tid", "spec_no", "goods_count", "sell_price", "product_date"},  # num is goods_count's alias
    )

    def change(data):
        values = {
            "FSaleOrgId": "{{maps.shop_org.sale_org}}",
            "SubHeadEntity.FEntity.FAuxPropId": "{{maps.channel.aux}}",
            "FNote": "_function CONCAT({{receiver_name}}, '-', {{details_list.barcode}})",
        }
        for row in data["target"]["mapping"]:
            row["value"] = values.get(row["field"], row["value"])

    scheme = edited_scheme(change)
    maps = scheme.path.parent.parent / "maps"
    maps.mkdir(exist_ok=True)
    (maps / "shop_org.csv").write_text("shop_no,sale_org\nTMALL001,100\n", encoding="utf-8")
    (maps / "channel.csv").write_text("batch_details.spec_no,aux\nSKU-1,03\n", encoding="utf-8")
    orders, lines = compile_mapping(scheme).source_columns()
    assert {"shop_no", "receiver_name"} <= orders and {"spec_no", "barcode"} <= lines


def _pandas_line_order(ids: list[str | None], dtype: str) -> list[int]:
    """The former transform's ordering (pandas), as row positions."""
    lines = pd.DataFrame({"rec_id": pd.array(ids, dtype=dtype)})
    numeric = pd.to_numeric(lines["rec_id"], errors="coerce")
    return lines.assign(_sort=numeric).sort_values(["_sort", "rec_id"], kind="stable").index.tolist()


ODD_IDS = [
    "1",
    "2",
    "9",
    "10",
    "010",
    "1.0",
    "1e1",
    "1E+1",
    " 3",
    "3 ",
    "\t4\n",
    "-1",
    "+2",
    "-0",
    "0",
    ".5",
    "5.",
    "inf",
    "-Infinity",
    "ınf",
    "nan",
    "NaN",
    "abc",
    "A1",
    "",
    " ",
    "1_0",
    "１",
    "0x1",
    "²",
    "1,0",
    "9007199254740993",
    "9007199254740992",
    None,
]


@given(st.lists(st.sampled_from(ODD_IDS) | st.integers(0, 10**6).map(str), max_size=12))
def test_lines_keep_the_former_line_id_order(ids):
    ours = sorted(range(len(ids)), key=lambda i: line_sort_key(ids[i]))
    assert ours == _pandas_line_order(ids, "string") == _pandas_line_order(ids, "str")


def _rule_by_rule(mapping, order, lines, now):
    """The bill as each rule, applied in turn, gives it: what BillMapping.build must equal."""
    model = {}
    for rule in mapping.header:
        rule.apply(mapping.resolver(order, lines), model, now)
    for entity, rules in mapping.subheads.items():
        sub = {}
        for rule in rules:
            rule.apply(mapping.resolver(order, lines), sub, now)
        if sub:
            model[entity] = sub
    entries = []
    for line in lines:
        entry = {}
        for rule in mapping.entry:
            rule.apply(mapping.resolver(order, lines, line), entry, now)
        entries.append(entry)
    if not entries:
        raise MappingError(mapping.entry_entity, "the order has no lines")
    model[mapping.entry_entity] = entries
    if not isinstance(model.get(mapping.bill_key), str) or not model[mapping.bill_key]:
        raise MappingError(mapping.bill_key, "the bill number is empty")
    return model


def _built_model(mapping, order, lines, now):
    return mapping.build(order, lines, now).model


def _outcome(build, *args):
    """``build(*args)``, or the field and message of the MappingError it raises."""
    try:
        return build(*args)
    except MappingError as exc:
        return (exc.field, exc.message)


def test_bills_equal_rule_by_rule_evaluation(edited_scheme, dataset):
    def change(data):
        values = {
            "FSaleOrgId": "{{maps.shop_org.sale_org}}",
            "FCustomerID": "_function CONCAT('K-', {{maps.shop_org.customer}})",
            "FNote": "_function CONCAT('WDT ', DATE_FORMAT(NOW(), '%Y-%m-%d'), ' ', {{order_no}})",
            "FSHOPNUMBER": "{{shop_no}}/{{batch_details.src_tid}}",
            "SubHeadEntity.FEntity.FAuxPropId": "{{maps.channel.aux}}",
            "SubHeadEntity.FEntity.FAmount": "_function {{batch_details.num}} * {{batch_details.sell_price}}",
            "SubHeadEntity.FEntity.FExpiryDate": "{{batch_details.expire_date}}",
        }
        for row in data["target"]["mapping"]:
            row["value"] = values.get(row["field"], row["value"])

    variant = edited_scheme(change)
    maps = variant.path.parent.parent / "maps"
    maps.mkdir(exist_ok=True)
    shops = sorted({o["shop_no"] for o in dataset.orders})
    (maps / "shop_org.csv").write_text(
        "shop_no,sale_org,customer\n"
        + "".join(f"{s},{100 + i},{'C' + s if i % 2 else ''}\n" for i, s in enumerate(shops[:-1])),
        encoding="utf-8",
    )
    specs = sorted({line["spec_no"] for o in dataset.orders for line in o["details_list"]})
    (maps / "channel.csv").write_text(
        "batch_details.spec_no,aux\n"
        + "".join(f"{s},{'0' + str(i % 3) if i % 4 else ''}\n" for i, s in enumerate(specs[:-1])),
        encoding="utf-8",
    )

    cases = []
    for n, order in enumerate(dataset.orders):
        header = {k: None if v is None else str(v) for k, v in order.items() if k != "details_list"}
        lines = [{k: None if v is None else str(v) for k, v in line.items()} for line in order["details_list"]]
        if n % 5 == 1:
            lines[0]["goods_count"] = ["two", "1E+2", " 3.50 ", "-0.000", "NaN"][n % 4]
        if n % 7 == 3:
            header["consign_time"] = ["0000-00-00 00:00:00", "yesterday", " 2026-11-01 "][n % 3]
        if n % 11 == 4:
            lines = []
        cases.append((header, lines))
    built = 0
    seed = compile_mapping(SCHEME)
    for mapping in (seed, compile_mapping(variant)):
        for _ in range(2):  # the second pass is served by the mapping's caches
            for header, lines in cases:
                ours = _outcome(_built_model, mapping, header, lines, NOW)
                assert ours == _outcome(_rule_by_rule, mapping, header, lines, NOW)
                built += isinstance(ours, dict)
        first, second = (mapping.build(*cases[0], NOW).model for _ in range(2))
        first["FBillTypeID"]["FNUMBER"] = "changed"  # bills share no mutable part
        assert second["FBillTypeID"] == {"FNUMBER": "XSCKD001"}
    assert 0 < built < 4 * len(cases)
    # what build keeps on the mapping does not stop it being copied or pickled
    assert pickle.loads(pickle.dumps(seed)).build(*cases[0], NOW) == copy.deepcopy(seed).build(*cases[0], NOW)
