"""Validate and transform on a hand-made window: each rule quarantines the whole stock-out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles, read_json, read_jsonl, read_parquet, write_parquet
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.windows import Window, parse_datetime
from tests.conftest import run_of

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))


def _order(stockout_id: str, order_no: str | None, **fields) -> dict:
    return {
        "stockout_id": stockout_id,
        "order_no": order_no,
        "stockout_no": order_no,
        "consign_time": "2026-11-01 10:00:00",
        "shop_no": "TMALL001",
        "warehouse_no": "WH001",
        **fields,
    }


def _line(
    rec_id: str, stockout_id: str, count: str = "1.0000", price: str = "10.0000", spec: str | None = "GT1001-01"
) -> dict:
    return {
        "rec_id": rec_id,
        "stockout_id": stockout_id,
        "spec_no": spec,
        "goods_count": count,
        "sell_price": price,
        "src_tid": "T" + stockout_id,
        "product_date": "0000-00-00 00:00:00",
    }


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = ObjectStoragePath(tmp_path_factory.mktemp("stage").as_uri())
    files = RunFiles(root, SCHEME.dag_id, WINDOW)
    orders = [
        _order("1", "CK-GOOD"),
        _order("2", "CK-NEGATIVE"),
        _order("3", "CK-NOSKU"),
        _order("4", "CK-TEXTQTY"),
        _order("5", "CK-TWIN"),
        _order("6", "CK-TWIN"),
        _order("7", None),
        _order("8", "CK-GIFT"),
        _order("9", "CK-NOLINES"),
    ]
    lines = [
        _line("11", "1"),
        _line("12", "1", count="2.0000", price="19.9000"),
        _line("21", "2", price="-1.0000"),
        _line("31", "3", spec=None),
        _line("41", "4", count="two"),
        _line("51", "5"),
        _line("61", "6"),
        _line("71", "7"),
        _line("81", "8", price="0.0000"),
    ]
    write_parquet(pd.DataFrame(orders, dtype="string"), files.orders)
    write_parquet(pd.DataFrame(lines, dtype="string"), files.lines)
    result = validate(run_of(SCHEME, files))
    return files, result


def test_each_broken_rule_is_listed_with_its_value(staged):
    files, result = staged
    report = read_parquet(files.quarantine)
    report = report.astype(object).where(report.notna(), None)
    found = {(r.order_no, r.check, r.value) for r in report.itertuples()}
    assert ("CK-NEGATIVE", "sell_price >= 0", "-1.0000") in found
    assert ("CK-NOSKU", "spec_no is present", None) in found
    # text that is not a number is held back with the text as received
    assert ("CK-TEXTQTY", "goods_count is present", "two") in found
    assert {("CK-TWIN", "order_no is unique", "CK-TWIN")} <= found and len(report[report["order_no"] == "CK-TWIN"]) == 4
    assert any(r.order_id == "7" and r.check == "order_no is present" for r in report.itertuples())
    assert ("31", "spec_no is present") in {(r.line_id, r.check) for r in report.itertuples()}
    assert result.quarantined_orders == 6
    assert set(report["order_no"].dropna()) == {"CK-NEGATIVE", "CK-NOSKU", "CK-TEXTQTY", "CK-TWIN"}
    summary = read_json(files.quality / "summary.json")
    assert summary["broken_rules"] == len(report)
    assert (files.quality / "docs" / "index.html").exists()
    assert json.loads((files.quality / "stockout_lines.json").read_text())["success"] is False


def test_transform_builds_bills_for_valid_orders_only(staged):
    files, _ = staged
    result = transform(run_of(SCHEME, files))
    bills = {b["bill_no"]: b for b in read_jsonl(files.bills)}
    assert set(bills) == {"CK-GOOD", "CK-GIFT"}
    assert bills["CK-GOOD"]["model"]["FEntity"][1]["FRealQty"] == "2"
    assert bills["CK-GIFT"]["model"]["FEntity"][0]["FIsFree"] is True
    # an order without lines cannot become a bill: listed, not dropped
    unmapped = read_parquet(files.unmapped)
    assert unmapped.to_dict("records") == [
        {"order_id": "9", "order_no": "CK-NOLINES", "field": "FEntity", "message": "the order has no lines"}
    ]
    assert (result.bills, result.unmapped, result.skipped_quarantined) == (2, 1, 6)
    request = read_json(files.request)
    assert request == {
        "form_id": "SAL_OUTSTOCK",
        "bill_key": "FBillNo",
        "service": "BatchSave",
        "options": {"IsAutoSubmitAndAudit": False, "IsVerifyBaseDataField": False, "SubSystemId": "21"},
        "base_data": request["base_data"],
        "requires": [],
    }
    assert request["base_data"]["FMaterialID"] == "BD_MATERIAL"
