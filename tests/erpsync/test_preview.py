"""``python -m erpsync preview``: one order's Kingdee payload, from a file, the staging or WDT."""

from __future__ import annotations

import io
import json
from contextlib import closing

from erpsync.cli import main
from erpsync.scheme import INCLUDE_DIR
from erpsync.windows import Window, parse_datetime
from tests.conftest import wdt_connection

SCHEME = str(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
ORDER = {
    "stockout_id": 9001,
    "order_no": "CK2026110100012",
    "stockout_no": "CK2026110100012",
    "consign_time": "2026-11-01 10:23:45",
    "shop_no": "FENXIAO004",
    "warehouse_no": "WH002",
    "details_list": [
        {
            "rec_id": 10,
            "spec_no": "GT1001-01",
            "goods_count": "2.0000",
            "sell_price": "19.9000",
            "product_date": "2026-03-01 00:00:00",
            "src_tid": "P1001",
        },
        {
            "rec_id": 9,
            "spec_no": "HW3001-02",
            "goods_count": "1.0000",
            "sell_price": "0.0000",
            "product_date": "0000-00-00 00:00:00",
            "src_tid": "P1002",
        },
    ],
}


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["preview", SCHEME, *args], out), out.getvalue()


def _payload(text: str) -> dict:
    return json.loads(text.split("Payload (not posted):\n", 1)[1])


def test_preview_of_an_order_file_shows_each_field_its_value_and_source(tmp_path):
    path = tmp_path / "order.json"
    path.write_text(json.dumps({"stockout_list": [ORDER], "total_count": 1}), encoding="utf-8")
    code, text = _run("--order", str(path), "--now", "2026-11-02")
    assert code == 0
    assert "order CK2026110100012 (id 9001, 2 lines)" in text
    assert "FBillNo                      \"CK2026110100012\"  <- {{order_no}}  [order_no='CK2026110100012']" in text
    assert (
        "FEntity[0].FIsFree           true  <- _function case" in text and "[batch_details.sell_price='0.0000']" in text
    )
    assert "  FEntity[0].FProduceDate      <- {{batch_details.product_date}}" in text  # WDT's zero date: not sent
    model = _payload(text)["data"]["Model"][0]
    # lines in line-id order, 9 before 10, as a run builds the bill
    assert [e["FMaterialID"]["FNumber"] for e in model["FEntity"]] == ["HW3001-02", "GT1001-01"]
    assert model["FEntity"][1]["FTaxPrice"] == "19.9" and model["FEntity"][1]["FAuxPropId"] == {"FNumber": "03"}
    assert _payload(text)["data"]["IsAutoSubmitAndAudit"] is False


def test_preview_names_the_field_of_an_order_that_cannot_be_mapped(tmp_path):
    path = tmp_path / "order.json"
    path.write_text(json.dumps({**ORDER, "details_list": []}), encoding="utf-8")
    code, text = _run("--order", str(path))
    assert code == 1 and "cannot be mapped: FEntity: the order has no lines" in text


def test_preview_reads_the_staging_and_else_asks_wdt(wdt_emulator, monkeypatch, tmp_path):
    from airflow.sdk import ObjectStoragePath

    from erpsync.run import Run
    from erpsync.scheme import load_scheme
    from erpsync.steps.extract import extract
    from erpsync.wdt.connector import WdtReader
    from erpsync.wdt.hook import WdtHook

    monkeypatch.setenv("AIRFLOW_CONN_WDT_PREVIEW", wdt_connection(wdt_emulator.url))
    scheme = load_scheme(SCHEME)
    window = Window.of(parse_datetime("2026-11-01", "start"), parse_datetime("2026-11-04", "end"))
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    with closing(WdtHook("wdt_preview").get_conn()) as client:
        extract(Run.open(scheme, window, root), WdtReader(client, scheme.source))
        number = client.call(
            scheme.source.api.method,
            {
                "start_time": "2026-11-01 00:00:00",
                "end_time": "2026-11-03 23:59:59",
                "status": "110",
                "is_by_modified": "1",
            },
        )["stockout_list"][0]["order_no"]

    code, staged = _run("--stockout-no", number, "--staging-root", str(tmp_path / "staging"))
    assert code == 0 and f"order {number}" in staged and "window=20261101T000000_20261104T000000" in staged

    code, missing = _run("--stockout-no", number, "--staging-root", str(tmp_path / "empty"))
    assert code == 1 and "give --window START END to ask the source" in missing

    code, asked = _run(
        "--stockout-no",
        number,
        "--staging-root",
        str(tmp_path / "empty"),
        "--window",
        "2026-11-01",
        "2026-11-04",
        "--connection",
        "wdt_preview",
    )
    assert code == 0 and "from wdt, [2026-11-01" in asked
    assert _payload(asked) == _payload(staged)  # the same bill whichever way the order came
