"""View/Submit/Audit/UnAudit/Delete, stock, defaults, master-data Save, BatchSaveQuery, the number index and
concurrency of the Kingdee emulator, driven by the official SDK and plain HTTP over loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from emulators.kingdee import KingdeeHTTPServer
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    CREDS,
    PLAIN_SKU,
    QUERY,
    STUB,
    UNKNOWN_SKU,
    WAREHOUSE,
    _serve,
    batch_save,
    bill,
    errors,
    login_body,
    must_input,
    post,
    query,
    row,
    saved,
    sdk_for,
)

NEGATIVE = "更新库存时出现可以忽略的异常数据，是否继续？"
QUERY_ASYNC = STUB + "DynamicFormService.QueryAsyncResult"
LOGIN_BY_APP_SECRET = STUB + "AuthService.LoginByAppSecret"


def op(sdk: K3CloudApiSdk, name: str, **data: Any) -> dict[str, Any]:
    return json.loads(getattr(sdk, name)("SAL_OUTSTOCK", data))["Result"]["ResponseStatus"]


def status_of(sdk: K3CloudApiSdk, number: str) -> list[list[Any]]:
    return query(sdk, "SAL_OUTSTOCK", "FDocumentStatus", f"FBillNo = '{number}'")


def level(srv: KingdeeHTTPServer, material: str, stock: str = WAREHOUSE) -> Decimal:
    master = srv.emulator.master
    m, s = master.find("BD_MATERIAL", material), master.find("BD_STOCK", stock)
    assert m is not None and s is not None
    return srv.emulator.inventory.level(m["FMATERIALID"], s["FSTOCKID"])


def test_sdk_signature_flow_view_submit_audit_unaudit_delete(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        assert saved(batch_save(sdk, bill("CK-1"), bill("CK-2"), bill("CK-3")))
        view = json.loads(sdk.View("SAL_OUTSTOCK", {"Number": "CK-1"}))["Result"]
        assert view["ResponseStatus"]["IsSuccess"] is True
        doc = view["Result"]
        assert (doc["Id"], doc["BillNo"], doc["DocumentStatus"], doc["F_ora_Text_ysdh"]) == (
            100001,
            "CK-1",
            "A",
            "TB-778899",
        )
        assert doc["CustomerID"]["Number"] == bill()["FCustomerID"]["FNumber"]
        assert doc["SAL_OUTSTOCKFIN"][0]["SettleCurrID"]["Name"] == [{"Key": 2052, "Value": "人民币"}]
        entry = doc["SAL_OUTSTOCKENTRY"][0]
        assert (entry["Seq"], entry["MaterialID"]["Number"], entry["RealQty"], entry["AllAmount"]) == (
            1,
            PLAIN_SKU,
            2,
            39.8,
        )
        by_id = json.loads(sdk.View("SAL_OUTSTOCK", {"Id": "100002", "Number": "CK-1"}))["Result"]["Result"]
        assert by_id["BillNo"] == "CK-2"  # Id wins over Number
        missing = json.loads(sdk.View("SAL_OUTSTOCK", {"Number": "NOPE"}))["Result"]["ResponseStatus"]
        assert missing["IsSuccess"] is False and missing["MsgCode"] == 10

        stock_before = level(srv, PLAIN_SKU)
        submitted = op(sdk, "Submit", Numbers=["CK-1", "CK-2", "NOPE"])
        assert submitted["IsSuccess"] is False and submitted["MsgCode"] == 10
        assert [s["DIndex"] for s in submitted["SuccessEntitys"]] == [0, 1]
        assert submitted["SuccessMessages"][0]["Message"] == "单据编号为“CK-1”的销售出库单，提交成功！"
        assert status_of(sdk, "CK-1") == [["B"]]
        audited = op(sdk, "Audit", Ids="100001", Numbers=["CK-3"])  # Ids win over Numbers
        assert audited["IsSuccess"] is True and audited["SuccessEntitys"] == [
            {"Id": 100001, "Number": "CK-1", "DIndex": 0}
        ]
        assert level(srv, PLAIN_SKU) == stock_before - 2
        again = op(sdk, "Audit", Numbers=["CK-1", "CK-3"])
        assert again["MsgCode"] == 11 and [(e["DIndex"], e["Message"]) for e in again["Errors"]] == [
            (0, "单据编号为“CK-1”的销售出库单，单据已经审核！"),
            (1, "单据编号为“CK-3”的销售出库单，单据未提交，不允许审核！"),
        ]
        refused = op(sdk, "Delete", Numbers=["CK-1"])
        assert refused["MsgCode"] == 11 and "不允许删除" in refused["Errors"][0]["Message"]
        assert op(sdk, "UnAudit", Numbers=["CK-1"])["IsSuccess"] is True
        assert status_of(sdk, "CK-1") == [["D"]] and level(srv, PLAIN_SKU) == stock_before
        deleted = op(sdk, "Delete", Numbers=["CK-1", "CK-2"])
        assert deleted["IsSuccess"] is True and len(deleted["SuccessEntitys"]) == 2
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == [["CK-3"]]
        reused = batch_save(sdk, bill("CK-1"))  # Delete freed the number, not the FID
        assert reused["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100004, "Number": "CK-1", "DIndex": 0}]


def test_auto_audit_checks_stock_unless_the_interaction_is_answered(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        on_hand = level(srv, PLAIN_SKU)
        fits = str(on_hand) if on_hand > 0 else None
        models = [bill("CK-FIT", rows=[row(qty=fits)])] if fits else []
        models.append(bill("CK-OVER", rows=[row(qty="1"), row(qty="1")]))  # what is left is not enough
        result = batch_save(sdk, *models, IsAutoSubmitAndAudit=True)
        assert errors(result) == [(len(models) - 1, None, NEGATIVE)]
        assert result["ResponseStatus"]["MsgCode"] == 11
        assert level(srv, PLAIN_SKU) == 0
        over = bill("CK-OVER", rows=[row(qty="1"), row(qty="1")])
        flags = "SomeFlag;STK_InvCheckResult"
        forced = batch_save(sdk, over, IsAutoSubmitAndAudit=True, InterationFlags=flags)
        assert saved(forced) and status_of(sdk, "CK-OVER") == [["C"]]
        assert level(srv, PLAIN_SKU) == -2
        # Audit checks the same way.
        assert saved(batch_save(sdk, bill("CK-LATER")))
        assert op(sdk, "Submit", Numbers=["CK-LATER"])["IsSuccess"]
        assert op(sdk, "Audit", Numbers=["CK-LATER"])["Errors"][0]["Message"] == NEGATIVE
        assert op(sdk, "Audit", Numbers=["CK-LATER"], InterationFlags="STK_InvCheckResult")["IsSuccess"]
    with _serve(tmp_path / "kd") as again:  # stock levels come back from the audited bills
        assert level(again, PLAIN_SKU) == -4


def test_bill_type_and_date_default_like_the_template(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        model = bill("CK-DEF")
        del model["FBillTypeID"], model["FDate"]
        assert saved(batch_save(sdk, model))
        rows = query(sdk, "SAL_OUTSTOCK", "FBillTypeID.FNumber,FDate", "FBillNo = 'CK-DEF'")
        assert rows == [["XSCKD01_SYS", dt.date.today().isoformat() + "T00:00:00"]]
        unknown = batch_save(sdk, bill("CK-BT", FBillTypeID={"FNumber": "NO_SUCH_TYPE"}))
        assert errors(unknown) == [(0, "FBillTypeID", "字段“单据类型”是必填项")]


def test_master_data_save_lets_a_refused_bill_through_and_persists(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        refused = batch_save(sdk, bill("CK-NEW", rows=[row(UNKNOWN_SKU)]))
        assert errors(refused) == [(0, "FMaterialID", must_input(1, "物料编码"))]
        material = {
            "FNumber": UNKNOWN_SKU,
            "FName": "新品试销礼盒 标准装",
            "FCreateOrgId": {"FNumber": WAREHOUSE},
            "SubHeadEntity": {"FBaseUnitId": {"FNumber": "Pcs"}},
        }
        created = json.loads(sdk.Save("BD_MATERIAL", {"Model": material}))["Result"]
        assert created["ResponseStatus"]["IsSuccess"] is True and created["Number"] == UNKNOWN_SKU
        duplicate = json.loads(sdk.Save("BD_MATERIAL", {"Model": material}))["Result"]
        taken = f"违反字段唯一性要求：编码唯一。[{UNKNOWN_SKU}]在当前系统中已经被使用。"
        assert errors(duplicate) == [(0, "FNumber", taken)]
        no_org = {"Model": {"FNumber": "NEWSHOP", "FName": "新店"}}
        customer = json.loads(sdk.Save("BD_Customer", no_org))["Result"]
        assert errors(customer) == [(0, "FCreateOrgId", "字段“创建组织”是必填项")]
        assert saved(batch_save(sdk, bill("CK-NEW", rows=[row(UNKNOWN_SKU)])))
        other_form = json.loads(sdk.Save("BD_STOCK", {"Model": {"FNumber": "X"}}))["Result"]["ResponseStatus"]
        assert other_form["MsgCode"] == 4
    with _serve(tmp_path / "kd") as restarted:
        sdk = sdk_for(restarted.url)
        keys = "FMATERIALID,FNumber,FUseOrgId.FNumber"
        rows = query(sdk, "BD_MATERIAL", keys, f"FNumber = '{UNKNOWN_SKU}'")
        assert rows == [[created["Id"], UNKNOWN_SKU, WAREHOUSE]]
        assert query(sdk, "SAL_OUTSTOCK", "FMaterialID.FNumber", "FBillNo = 'CK-NEW'") == [[UNKNOWN_SKU]]


def test_session_logins_carry_only_the_session_id(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", per_bill_ms=300) as srv:
        validated = requests.Session()
        login = post(srv.url, STUB + "AuthService.ValidateUser", login_body(), validated).json()
        by_cookie = post(
            srv.url, BATCH_SAVE, {"formid": "SAL_OUTSTOCK", "data": {"Model": [bill("CK-S1")]}}, validated
        ).json()
        assert by_cookie["Result"]["ResponseStatus"]["IsSuccess"] is True
        by_header = {"kdservice-sessionid": login["KDSVCSessionId"]}
        view_body = {"formid": "SAL_OUTSTOCK", "data": {"Number": "CK-S1"}}
        view = post(srv.url, STUB + "DynamicFormService.View", view_body, headers=by_header)
        assert view.json()["Result"]["Result"]["BillNo"] == "CK-S1"
        app_secret = requests.Session()
        body = {
            "acctID": CREDS["acct_id"],
            "username": CREDS["username"],
            "appId": CREDS["app_id"],
            "appSecret": CREDS["app_secret"],
            "lcid": 2052,
        }
        assert post(srv.url, LOGIN_BY_APP_SECRET, body, app_secret).json()["LoginResultType"] == 1
        submit = {"formid": "SAL_OUTSTOCK", "data": {"Numbers": ["CK-S1"]}}
        assert (
            post(srv.url, STUB + "DynamicFormService.Submit", submit, app_secret).json()["Result"]["ResponseStatus"][
                "IsSuccess"
            ]
            is True
        )

        # BatchSaveQuery by hand: the task really runs in the background (300 ms per bill).
        task = {
            "formid": "SAL_OUTSTOCK",
            "data": {"Model": [bill("CK-T1")]},
            "beginmethod": "BeginQueryImpl",
            "querymethod": "QueryAsyncResult",
        }
        first = post(srv.url, BATCH_SAVE, task, validated).json()
        assert first["Status"] in (0, 1) and first["Result"] is None and first["TaskId"]
        info = {"queryInfo": json.dumps({"TaskId": first["TaskId"], "Cancelled": False})}
        assert post(srv.url, QUERY_ASYNC, info, validated).json()["Status"] in (0, 1)
        # The SDK, holding only the login's session (its secret is wrong), polls until the save is done.
        sdk = sdk_for(srv.url, app_secret="wrong")
        sdk.cookiesStore.SID = login["KDSVCSessionId"]
        polled = json.loads(sdk.BatchSaveQuery("SAL_OUTSTOCK", {"Model": [bill("CK-T2"), bill("CK-T3")]}))
        entities = polled["Result"]["ResponseStatus"]["SuccessEntitys"]
        assert [s["Number"] for s in entities] == ["CK-T2", "CK-T3"]
        done = post(srv.url, QUERY_ASYNC, info, validated).json()
        assert (
            done["Status"] == 2 and done["Result"]["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "CK-T1"
        )


def test_number_index_keeps_the_query_semantics(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        assert saved(batch_save(sdk, *[bill(f"CK-IX{n}", rows=[row(), row()]) for n in range(5)]))
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "FBillNo in ('ck-ix3 ', 'CK-IX1', 'nope')") == [
            ["CK-IX1"],
            ["CK-IX3"],
        ]
        rows = query(sdk, "SAL_OUTSTOCK", "FBillNo,FEntity_FSeq", "FBillNo = 'CK-IX2' AND FEntity_FSeq = 2")
        assert rows == [["CK-IX2", 2]]
        either = "FBillNo = 'CK-IX0' OR (FBillNo = 'CK-IX4' AND FRealQty > 1)"
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo", either, OrderString="FBillNo DESC") == [
            ["CK-IX4"],
            ["CK-IX4"],
            ["CK-IX0"],
            ["CK-IX0"],
        ]
        unpinned = "FBillNo = 'CK-IX0' OR FBillNo LIKE '%4'"  # one branch is not pinned: a scan
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo", unpinned) == [["CK-IX0"], ["CK-IX4"]]
        negated = "NOT FBillNo = 'CK-IX0' AND FBillNo NOT IN ('CK-IX1')"
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo", negated) == [["CK-IX2"], ["CK-IX3"], ["CK-IX4"]]
        assert query(sdk, "BD_MATERIAL", "FNumber", f"FNumber = '{PLAIN_SKU.lower()}'") == [[PLAIN_SKU]] * 3


def test_sixteen_threads_never_corrupt_the_store(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        failures: list[str] = []
        results: list[dict[str, Any]] = []

        def worker(i: int) -> None:
            try:
                http = requests.Session()
                assert (
                    post(srv.url, STUB + "AuthService.ValidateUser", login_body(), http).json()["LoginResultType"] == 1
                )
                sdk = sdk_for(srv.url)
                for round_ in range(3):
                    # auto-numbered bills, plus numbers that every thread tries to take
                    models = [bill(None), bill(None), bill(f"CK-SHARED-{round_}"), bill(f"CK-OWN-{i}-{round_}")]
                    body = {"formid": "SAL_OUTSTOCK", "data": {"Model": models}}
                    if i % 2:  # half the threads on a login session, half signing with the SDK
                        result = post(srv.url, BATCH_SAVE, body, http).json()
                    else:
                        result = json.loads(sdk.BatchSave("SAL_OUTSTOCK", body["data"]))
                    results.append(result["Result"])
                    listing = {"data": {"FormId": "SAL_OUTSTOCK", "FieldKeys": "FID,FBillNo"}}
                    rows = post(srv.url, QUERY, listing, http)
                    assert rows.status_code == 200 and not isinstance(rows.json()[0][0], dict)
            except Exception as exc:  # reported below: an assertion in a thread would be lost
                failures.append(repr(exc))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        saved_entities = [s for r in results for s in r["ResponseStatus"]["SuccessEntitys"]]
        numbers = [s["Number"] for s in saved_entities]
        assert len(numbers) == len(set(numbers)) == 16 * 3 * 3 + 3  # each shared number saved once
        assert len({s["Id"] for s in saved_entities}) == len(numbers)
        sdk = sdk_for(srv.url)
        rows = query(sdk, "SAL_OUTSTOCK", "FID,FBillNo")
        assert sorted(r[1] for r in rows) == sorted(numbers)
    with _serve(tmp_path / "kd") as restarted:
        rows = query(sdk_for(restarted.url), "SAL_OUTSTOCK", "FID,FBillNo")
        assert sorted(r[1] for r in rows) == sorted(numbers)
