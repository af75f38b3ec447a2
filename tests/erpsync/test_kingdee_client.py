"""The Kingdee client and the load step against the Kingdee emulator, over loopback."""

from __future__ import annotations

import copy

import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeConfigError
from erpsync.scheme import LoadSettings
from erpsync.staging import RunFiles, write_json, write_jsonl
from erpsync.steps.load import read_report
from erpsync.windows import Window, parse_datetime
from tests.conftest import KINGDEE, load_bills

FORM = "SAL_OUTSTOCK"
OPTIONS = {"IsAutoSubmitAndAudit": False, "IsVerifyBaseDataField": False, "SubSystemId": "21"}


def _client(server, **overrides) -> K3CloudClient:
    return K3CloudClient(K3CloudConfig(server_url=server.url, **{**KINGDEE, **overrides}, backoff_seconds=0.01))


def _model(bill_no: str, material: str = "GT1001-01", qty: str = "2", price: str = "19.9") -> dict:
    return {
        "FBillTypeID": {"FNUMBER": "XSCKD001"},
        "FBillNo": bill_no,
        "FDate": "2026-11-01 10:00:00",
        "FSaleOrgId": {"FNumber": "TMALL001"},
        "FCustomerID": {"FNumber": "TMALL001"},
        "FSaleDeptID": {"FNumber": "BM000175"},
        "FStockOrgId": {"FNumber": "WH001"},
        "F_ora_Text_ckdh": bill_no,
        "FOwnerIdHead": {"FNumber": "WH001"},
        "SubHeadEntity": {"FSettleOrgID": {"FNumber": "TMALL001"}, "FSettleCurrID": {"FNumber": "PRE001"}},
        "FEntity": [
            {
                "FMaterialID": {"FNumber": material},
                "FMustQty": qty,
                "FRealQty": qty,
                "FTaxPrice": price,
                "FIsFree": price == "0",
                "FLot": {"FNumber": "20250822"},
                "FOwnerTypeID": "BD_OwnerOrg",
                "FOwnerID": {"FNumber": "WH001"},
                "FStockID": {"FNumber": "WH001"},
            }
        ],
    }


def _files(tmp_path, bills: list[dict]) -> RunFiles:
    window = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), "test_dag", window)
    write_jsonl(
        [
            {"bill_no": m["FBillNo"], "order_id": str(i), "order_no": m["FBillNo"], "model": m}
            for i, m in enumerate(bills)
        ],
        files.bills,
    )
    write_json({"form_id": FORM, "service": "BatchSave", "options": OPTIONS}, files.request)
    return files


def test_a_saved_bill_is_found_by_number_with_exact_amounts(kingdee_emulator):
    client = _client(kingdee_emulator)
    assert client.find_bills(FORM, "FBillNo", ["CK-T-1"]) == {}
    status = client.batch_save(FORM, {**OPTIONS, "Model": [_model("CK-T-1", qty="3", price="33.33")]})
    assert status["IsSuccess"] is True
    fid = status["SuccessEntitys"][0]["Id"]
    assert client.find_bills(FORM, "FBillNo", ["CK-T-1", "CK-T-2"]) == {"CK-T-1": (fid, "CK-T-1")}
    rows = client.execute_bill_query(FORM, ["FBillNo", "FRealQty", "FTaxPrice", "FAllAmount"], "FBillNo = 'CK-T-1'")
    assert [[str(v) for v in row] for row in rows] == [["CK-T-1", "3", "33.33", "99.99"]]


def test_quotes_in_bill_numbers_cannot_break_the_filter(kingdee_emulator):
    assert _client(kingdee_emulator).find_bills(FORM, "FBillNo", ["x' or '1'='1"]) == {}


def test_load_creates_each_bill_once_and_reports_rejections(kingdee_emulator, tmp_path):
    client = _client(kingdee_emulator)
    bills = [_model("CK-L-1"), _model("CK-L-2", material="NEW-SKU-999"), _model("CK-L-3", price="0"), _model("CK-L-4")]
    files = _files(tmp_path, bills)

    first = load_bills(client, files, LoadSettings(chunk_size=3))
    assert (first.created, first.existing, first.rejected) == (3, 0, 1)
    report = read_report(files).set_index("bill_no")
    assert report.loc["CK-L-2", "outcome"] == "rejected"
    assert "FMaterialID" in report.loc["CK-L-2", "field"].split("; ")
    assert "物料编码" in report.loc["CK-L-2", "message"] and "第【1】行" in report.loc["CK-L-2", "message"]
    assert (
        "(the bill sent FMaterialID = 'NEW-SKU-999')" in report.loc["CK-L-2", "message"]
    )  # the value, not only the field
    assert report.loc["CK-L-1", "kingdee_id"] and report.loc["CK-L-1", "kingdee_number"] == "CK-L-1"

    again = load_bills(client, files, LoadSettings(chunk_size=3))
    assert (again.created, again.existing, again.rejected) == (0, 3, 1)
    rerun = read_report(files).set_index("bill_no")
    assert rerun.loc["CK-L-1", "kingdee_id"] == report.loc["CK-L-1", "kingdee_id"]
    assert len(client.execute_bill_query(FORM, ["FID"], "FBillNo like 'CK-L-%'")) == 3


def test_a_dry_run_looks_up_and_sends_nothing(kingdee_emulator, tmp_path):
    client = _client(kingdee_emulator)
    client.batch_save(FORM, {**OPTIONS, "Model": [_model("CK-Y-1")]})
    files = _files(tmp_path, [_model("CK-Y-1"), _model("CK-Y-2"), _model("CK-Y-3")])
    result = load_bills(client, files, LoadSettings(chunk_size=2), dry_run=True)
    assert (result.existing, result.would_create, result.created) == (1, 2, 0)
    assert dict(read_report(files)[["bill_no", "outcome"]].values) == {
        "CK-Y-1": "existing",
        "CK-Y-2": "would_create",
        "CK-Y-3": "would_create",
    }
    assert [r[0] for r in client.execute_bill_query(FORM, ["FBillNo"], "FBillNo like 'CK-Y-%'")] == ["CK-Y-1"]


def test_a_number_saved_twice_in_one_chunk_is_one_bill(kingdee_emulator, tmp_path):
    client = _client(kingdee_emulator)
    twin = copy.deepcopy(_model("CK-D-1"))
    files = _files(tmp_path, [_model("CK-D-1"), twin])
    result = load_bills(client, files, LoadSettings(chunk_size=10))
    assert (result.created, result.existing, result.rejected) == (1, 1, 0)
    assert len(client.find_bills(FORM, "FBillNo", ["CK-D-1"])) == 1


def test_a_wrong_secret_is_refused(kingdee_emulator):
    with pytest.raises(KingdeeConfigError, match="refused the credentials.*MsgCode 1"):
        _client(kingdee_emulator, app_secret="0" * 32).find_bills(FORM, "FBillNo", ["X"])


def test_an_unknown_data_center_is_refused(kingdee_emulator):
    with pytest.raises(KingdeeConfigError, match="data centre in extra.acct_id"):
        _client(kingdee_emulator, acct_id="nope").find_bills(FORM, "FBillNo", ["X"])


def test_the_session_cookie_is_reused(kingdee_emulator):
    client = _client(kingdee_emulator)
    client.find_bills(FORM, "FBillNo", ["X"])
    sid = client.session.cookies.get("kdservice-sessionid")
    assert sid
    client.find_bills(FORM, "FBillNo", ["Y"])
    assert client.session.cookies.get("kdservice-sessionid") == sid


def test_a_required_bill_is_found_in_a_joined_list_and_a_missing_one_holds_the_bill(kingdee_emulator):
    """target.requires: the sale of a merged order keeps its platform numbers joined with ','; a return
    naming either is let through, one naming a number no sale holds is held with the reason."""
    from erpsync.kingdee.save import hold_missing_requirements

    client = _client(kingdee_emulator)
    merged = _model("CK-M-1")
    merged["F_ora_Text_ysdh"] = "T-100,T-200"
    single = _model("CK-M-2")
    single["F_ora_Text_ysdh"] = "T-300"
    assert client.batch_save(FORM, {**OPTIONS, "Model": [merged, single]})["IsSuccess"] is True
    requirement = {"form": FORM, "field": "F_ora_Text_ysdh", "list": True, "label": "原销售出库单"}
    bills = [
        {"bill_no": f"RK-{tid}", "order_id": tid, "order_no": f"RK-{tid}", "model": {}, "requires": [tid]}
        for tid in ("T-100", "T-200", "T-300", "T-20", "T-1000")
    ]
    send, held = hold_missing_requirements(client, bills, [requirement])
    assert [b["bill_no"] for b in send] == ["RK-T-100", "RK-T-200", "RK-T-300"]
    assert [h["bill_no"] for h in held] == ["RK-T-20", "RK-T-1000"]  # a part of a number is no match
    assert held[0]["outcome"] == "held" and held[0]["field"] == "F_ora_Text_ysdh"
    assert (
        "原销售出库单 not in Kingdee yet: SAL_OUTSTOCK has no bill with F_ora_Text_ysdh = 'T-20'" in held[0]["message"]
    )
