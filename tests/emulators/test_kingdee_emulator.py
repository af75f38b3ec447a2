"""The Kingdee WebAPI emulator, driven over loopback by the official SDK and by plain HTTP clients."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from emulators.dataset import build_catalog
from emulators.kingdee import DEFAULT_CREDENTIALS, KingdeeHTTPServer, make_server
from emulators.kingdee.auth import (
    Credentials,
    Verdict,
    api_signature,
    app_data_header,
    decode_app_secret,
    kd_signature,
    login_sign,
    verify_signature,
)
from tests.conftest import serving

ROOT = Path(__file__).resolve().parents[2]
CREDS: dict[str, str] = {k: str(v) for k, v in DEFAULT_CREDENTIALS.items()}
STUB = "Kingdee.BOS.WebApi.ServicesStub."
BATCH_SAVE = STUB + "DynamicFormService.BatchSave"
QUERY = STUB + "DynamicFormService.ExecuteBillQuery"
BILL_QUERY = STUB + "DynamicFormService.BillQuery"
VALIDATE_USER = STUB + "AuthService.ValidateUser"
LOGIN_BY_APP_SECRET = STUB + "AuthService.LoginByAppSecret"
LOGIN_BY_SIGN = STUB + "AuthService.LoginBySign"
SESSION_LOST = "会话信息已丢失，请重新登录"
DUPLICATE = "违反字段唯一性要求：编码唯一。[{}]在当前系统中已经被使用。"
ROW = "单据体实体【明细信息】第【{}】行分录，"

CATALOG = build_catalog(0)
BATCH_SKU = next(s.spec_no for s in CATALOG.skus if s.batch_managed)
PLAIN_SKU = next(s.spec_no for s in CATALOG.skus if not s.batch_managed and s.known_to_kingdee)
UNKNOWN_SKU = next(s.spec_no for s in CATALOG.skus if not s.known_to_kingdee)
SHOP = CATALOG.shops[0].shop_no
WAREHOUSE = CATALOG.warehouses[0].warehouse_no


# ------------------------------------------------------------------------------------------ helpers
def _serve(data_dir: Path, **overrides: Any) -> Any:
    return serving(make_server("127.0.0.1", 0, **{"data_dir": data_dir, "seed": 0, **CREDS, **overrides}))


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[KingdeeHTTPServer]:
    with _serve(tmp_path / "kingdee") as srv:
        yield srv


def sdk_for(url: str, **overrides: str) -> K3CloudApiSdk:
    creds = {**CREDS, **overrides}
    sdk = K3CloudApiSdk(url)
    sdk.InitConfig(creds["acct_id"], creds["username"], creds["app_id"], creds["app_secret"], url, 2052)
    return sdk


@pytest.fixture()
def sdk(server: KingdeeHTTPServer) -> K3CloudApiSdk:
    return sdk_for(server.url)


def post(url: str, service: str, body: Any, http: Any = requests, **kw: Any) -> requests.Response:
    return http.post(f"{url}{service}.common.kdsvc", data=json.dumps(body), timeout=10, **kw)


def login_body(password: str = CREDS["app_secret"]) -> dict[str, Any]:
    return {"acctID": CREDS["acct_id"], "username": CREDS["username"], "password": password, "lcid": 2052}


def logged_in(url: str) -> requests.Session:
    http = requests.Session()
    assert post(url, VALIDATE_USER, login_body(), http).json()["LoginResultType"] == 1
    return http


def bill(
    number: str | None = "CK2024120400001", *, rows: list[dict[str, Any]] | None = None, **head: Any
) -> dict[str, Any]:
    """A bill shaped like the user's mapping sends it."""
    model: dict[str, Any] = {
        "FBillTypeID": {"FNUMBER": "XSCKD001"},
        "FDate": "2024-12-04 13:40:00",
        "FSaleOrgId": {"FNumber": SHOP},
        "FCustomerID": {"FNumber": SHOP},
        "FSaleDeptID": {"FNumber": "BM000175"},
        "FStockOrgId": {"FNumber": WAREHOUSE},
        "F_ora_Text_ysdh": "TB-778899",
        "F_ora_Text_ckdh": number or "",
        "FOwnerIdHead": {"FNumber": WAREHOUSE},
        "SubHeadEntity": {"FSettleOrgID": {"FNumber": SHOP}, "FSETTLECURRID": {"FNumber": "PRE001"}},
        "FEntity": rows if rows is not None else [row()],
    }
    if number is not None:
        model["FBillNo"] = number
    model.update(head)
    return model


def row(material: str = PLAIN_SKU, qty: Any = "2", price: Any = "19.9", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "FMaterialID": {"FNumber": material},
        "FAuxPropId": {"FNumber": "03"},
        "FMustQty": qty,
        "FRealQty": qty,
        "FTaxPrice": price,
        "FIsFree": False,
        "FLot": {"FNumber": "20250822"},
        "FProduceDate": "2025-08-22 00:00:00",
        "FOwnerTypeId": "BD_OwnerOrg",
        "FOwnerId": {"FNumber": WAREHOUSE},
        "FStockID": {"FNumber": WAREHOUSE},
    }
    entry.update(extra)
    return entry


def batch_save(sdk: K3CloudApiSdk, *models: dict[str, Any], **options: Any) -> dict[str, Any]:
    return json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": list(models), **options}))["Result"]


def saved(result: dict[str, Any]) -> bool:
    return result["ResponseStatus"]["IsSuccess"] is True


def query(sdk: K3CloudApiSdk, form: str, keys: str, filter_: Any = "", **extra: Any) -> Any:
    data = {"FormId": form, "FieldKeys": keys, "FilterString": filter_, **extra}
    return json.loads(sdk.ExecuteBillQuery(data), parse_float=Decimal)


def errors(result: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    return [(e["DIndex"], e["FieldName"], e["Message"]) for e in result["ResponseStatus"]["Errors"]]


def must_input(seq: int, caption: str) -> str:
    return f"{ROW.format(seq)}【{caption}】字段必录"


# ------------------------------------------------------------------------------------------- auth
def test_spec_test_vector_is_recomputed_by_the_verifier() -> None:
    app_id, secret = "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ", "fb7d46647ac346dbb5fcd45b65512a45"
    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc"
    appdata = app_data_header("5db25ac8d2b819", "webapi", 2052, 0)
    assert appdata == "NWRiMjVhYzhkMmI4MTksd2ViYXBpLDIwNTIsMA=="
    signature = kd_signature(app_id, "5db25ac8d2b819,webapi,2052,0", secret)
    assert signature == ("OWQ2YWVhM2JmOGVlYWEzYjVlZGI0NzM3MjlmYzA4NTkyYjhiMTAwNTgxODk5MmQ5NWIxMzBjZTQxNjk5ZWFiYg==")
    assert decode_app_secret("72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ") == "31ecfd13effe724e7e78fc17f8f94b66"
    api_sig = api_signature(path, "1700000000", "1700000000", app_id)
    assert api_sig == ("NzBlNzhhYjEyYzc0MjJmYTBhNjUyYzliNGFmMGVmMjg2ZTYyNWYzOGQ0MDE4ODc4YWEwZGRhZjRiNjc4YzVjMA==")
    assert app_data_header("acct", "张三") == "YWNjdCzlvKDkuIksMjA1Miww"
    headers = {
        "x-kd-appkey": app_id,
        "x-kd-appdata": appdata,
        "x-kd-signature": signature,
        "x-api-timestamp": "1700000000",
        "x-api-nonce": "1700000000",
        "x-api-signature": api_sig,
    }
    creds = Credentials("5db25ac8d2b819", "webapi", app_id, secret, secret)
    assert verify_signature(headers, creds, path=path, verify_api_signature=True).verdict is Verdict.OK
    wrong_secret = Credentials("5db25ac8d2b819", "webapi", app_id, "x" * 32, "")
    assert verify_signature(headers, wrong_secret, path=path).verdict is Verdict.REJECTED
    other_acct = Credentials("6000000000000", "webapi", app_id, secret, secret)
    assert verify_signature(headers, other_acct, path=path).verdict is Verdict.UNKNOWN_ACCT


def test_official_sdk_saves_and_queries_end_to_end(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", verify_api_signature=True) as srv:  # the SDK's X-Api-Signature must verify too
        sdk = sdk_for(srv.url)
        result = batch_save(
            sdk, bill(), NeedReturnFields=["FBillNo", "FEntity.FEntryID"], IsVerifyBaseDataField="false"
        )
        assert result["ResponseStatus"] == {
            "IsSuccess": True,
            "Errors": [],
            "SuccessMessages": [],
            "MsgCode": 0,
            "SuccessEntitys": [{"Id": 100001, "Number": "CK2024120400001", "DIndex": 0}],
        }
        assert result["NeedReturnData"] == [{"FBillNo": "CK2024120400001", "FEntity": [{"FEntryID": 100001}]}]
        assert sdk.cookiesStore.SID  # the session cookie was taken up
        sdk.identify.AppSecret = "wrong"  # a live session is served without looking at credentials
        rows = query(
            sdk,
            "SAL_OUTSTOCK",
            "FID,FBillNo,FDate,FDocumentStatus,FCustomerID.FNumber,FRealQty,F_ora_Text_ysdh",
            "FBillNo = 'CK2024120400001'",
        )
        assert rows == [[100001, "CK2024120400001", "2024-12-04T00:00:00", "A", SHOP, 2, "TB-778899"]]


def test_wrong_secret_is_msgcode_1_and_wrong_acct_is_not_200(server: KingdeeHTTPServer) -> None:
    bad = sdk_for(server.url, app_secret="0" * 32)
    result = json.loads(bad.BatchSave("SAL_OUTSTOCK", {"Model": [bill()]}))
    assert result == {
        "Result": {
            "ResponseStatus": {
                "ErrorCode": 500,
                "IsSuccess": False,
                "SuccessEntitys": [],
                "SuccessMessages": [],
                "MsgCode": 1,
                "Errors": [{"FieldName": None, "Message": SESSION_LOST, "DIndex": 0}],
            }
        }
    }
    wrapped = json.loads(bad.ExecuteBillQuery({"FormId": "SAL_OUTSTOCK", "FieldKeys": "FBillNo"}))
    assert wrapped[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    other_user = sdk_for(server.url, username="nobody").BatchSave("SAL_OUTSTOCK", {"Model": [bill()]})
    assert json.loads(other_user)["Result"]["ResponseStatus"]["MsgCode"] == 1
    with pytest.raises(RuntimeError, match="Fail to verify thirty passport"):
        sdk_for(server.url, acct_id="000000000000aa").BatchSave("SAL_OUTSTOCK", {"Model": [bill()]})
    body = {"formid": "SAL_OUTSTOCK", "data": {"Model": [bill()]}}
    unsigned = post(server.url, BATCH_SAVE, body)
    assert unsigned.status_code == 200 and unsigned.json()["Result"]["ResponseStatus"]["MsgCode"] == 1
    data = f"000000000000aa,{CREDS['username']},2052,0"
    other_acct = {
        "X-Kd-Appkey": CREDS["app_id"],
        "X-Kd-Appdata": base64.b64encode(data.encode()).decode(),
        "X-Kd-Signature": kd_signature(CREDS["app_id"], data, CREDS["app_secret"]),
    }
    refused = post(server.url, BATCH_SAVE, body, headers=other_acct)
    assert refused.status_code != 200 and refused.text == "Fail to verify thirty passport"


def test_validate_user_session_cookie_and_header(server: KingdeeHTTPServer) -> None:
    http = requests.Session()
    login = post(server.url, VALIDATE_USER, login_body(), http).json()
    assert login["LoginResultType"] == 1 and login["IsSuccessByAPI"] is True
    assert http.cookies.get("kdservice-sessionid") == login["KDSVCSessionId"]
    assert len(http.cookies.get("ASP.NET_SessionId") or "") == 24
    body = {"FormId": "SAL_OUTSTOCK", "Data": json.dumps({"Model": [bill()]})}  # data as a JSON string
    assert post(server.url, BATCH_SAVE, body, http).json()["Result"]["ResponseStatus"]["IsSuccess"] is True
    by_header = post(
        server.url,
        QUERY,
        {"data": {"FormId": "SAL_OUTSTOCK", "FieldKeys": "FBillNo"}},
        headers={"kdservice-sessionid": login["KDSVCSessionId"]},
    )
    assert by_header.json() == [["CK2024120400001"]]
    wrong = post(server.url, VALIDATE_USER, [CREDS["acct_id"], CREDS["username"], "bad", 2052]).json()
    assert wrong["LoginResultType"] == 0 and wrong["Context"] is None and wrong["Message"]


def test_logout_and_expired_sessions_need_a_new_login(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", session_ttl_s=60) as srv:
        stocks = {"data": {"FormId": "BD_STOCK", "FieldKeys": "FNumber"}}
        http = logged_in(srv.url)
        assert post(srv.url, STUB + "AuthService.Logout", {}, http).json()["LogoutResultType"] == 1
        after = post(srv.url, QUERY, stocks, http).json()
        assert after[0][0]["Result"]["ResponseStatus"]["Errors"][0]["Message"] == SESSION_LOST
        http = logged_in(srv.url)
        srv.emulator.sessions.ttl_seconds = 0  # every session is now older than its TTL
        expired = post(srv.url, BILL_QUERY, stocks, http).json()
        assert expired[0]["Result"]["ResponseStatus"]["MsgCode"] == 1  # BillQuery: the error is a row object


@pytest.mark.parametrize("secret_key", ["appSecret", "appSec", "appsecret"])
def test_login_by_app_secret_spellings(server: KingdeeHTTPServer, secret_key: str) -> None:
    http = requests.Session()
    body = {
        "acctID": CREDS["acct_id"],
        "username": CREDS["username"],
        "appId": CREDS["app_id"],
        secret_key: CREDS["app_secret"],
        "lcid": 2052,
    }
    assert post(server.url, LOGIN_BY_APP_SECRET, body, http).json()["LoginResultType"] == 1
    currencies = {"data": {"FormId": "BD_Currency", "FieldKeys": "FNumber,FName"}}
    assert post(server.url, QUERY, currencies, http).json() == [["PRE001", "人民币"], ["PRE002", "美元"]]
    body[secret_key] = "wrong"
    failed = post(server.url, LOGIN_BY_APP_SECRET, body).json()
    assert failed["LoginResultType"] == 0 and "KDSVCSessionId" not in failed


def test_login_by_sign_with_positional_parameters(server: KingdeeHTTPServer) -> None:
    ts = "1700000000"
    sign = login_sign(CREDS["acct_id"], CREDS["username"], CREDS["app_id"], CREDS["app_secret"], ts)
    params = [CREDS["acct_id"], CREDS["username"], CREDS["app_id"], ts, sign, 2052]
    login = post(server.url, LOGIN_BY_SIGN, {"parameters": params}).json()
    assert login["LoginResultType"] == 1
    # Classic envelope: `parameters` is a JSON string; the SID travels as a header only.
    envelope = {
        "format": 1,
        "useragent": "ApiClient",
        "rid": "1",
        "v": "1.0",
        "timestamp": "2024-12-04",
        "parameters": json.dumps(["SAL_OUTSTOCK", json.dumps({"Model": [bill("CK-SIGN")]})]),
    }
    reply = post(server.url, BATCH_SAVE, envelope, headers={"kdservice-sessionid": login["KDSVCSessionId"]})
    assert reply.json()["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "CK-SIGN"
    params[4] = "0" * 64
    assert post(server.url, LOGIN_BY_SIGN, {"parameters": params}).json()["LoginResultType"] == 0


def test_unknown_service_and_bad_bodies(server: KingdeeHTTPServer) -> None:
    http = logged_in(server.url)
    missing = post(server.url, STUB + "DynamicFormService.NoSuchThing", {}, http)
    assert missing.status_code == 404 and "NoSuchThing" in missing.text
    odd_case = server.url.replace("k3cloud", "K3Cloud") + BATCH_SAVE.lower() + ".common.kdsvc"
    not_json = http.post(odd_case, data="{not json", timeout=10)
    assert not_json.status_code == 200 and not_json.json()["Result"]["ResponseStatus"]["MsgCode"] == 8
    parts = [b'{"formid": "SAL_OUTSTOCK", ', json.dumps({"data": {"Model": [bill("CK-CHUNK")]}})[1:].encode()]
    chunked = http.post(server.url + BATCH_SAVE + ".common.kdsvc", data=iter(parts), timeout=10)
    assert chunked.json()["Result"]["ResponseStatus"]["IsSuccess"] is True
    no_model = post(server.url, BATCH_SAVE, {"formid": "SAL_OUTSTOCK", "data": {"Model": []}}, http).json()
    assert errors(no_model["Result"]) == [(0, None, "data数据包中的参数Model的值不能为空。")]
    no_form = post(server.url, BATCH_SAVE, {"formid": "NO_SUCH_FORM", "data": {"Model": [bill()]}}, http)
    unknown_form = "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除。"
    assert errors(no_form.json()["Result"]) == [(0, None, unknown_form)]


# ------------------------------------------------------------------------------------------- saving
def test_partial_success_keeps_dindex_fieldname_and_verbatim_messages(sdk: K3CloudApiSdk) -> None:
    assert saved(batch_save(sdk, bill("CK-OLD")))
    result = batch_save(
        sdk,
        bill("CK-GOOD"),
        bill("CK-BADSKU", rows=[row(UNKNOWN_SKU)]),
        bill("CK-OLD"),
        bill("CK-GOOD"),  # the same number twice in one batch: the second one is refused
        bill("CK-NOCUST", FCustomerID={"FNumber": "NOBODY"}, rows=[row(), row(FStockID={"FNumber": "X"})]),
    )
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["ErrorCode"] == 500 and status["MsgCode"] == 11
    assert status["SuccessEntitys"] == [{"Id": 100002, "Number": "CK-GOOD", "DIndex": 0}]
    assert errors(result) == [
        (4, "FCustomerID", "字段“客户”是必填项"),
        (1, "FMaterialID", must_input(1, "物料编码")),
        (4, "FStockID", must_input(2, "仓库")),
        (2, "FBillNo", DUPLICATE.format("CK-OLD")),
        (3, "FBillNo", DUPLICATE.format("CK-GOOD")),
    ]
    assert result["NeedReturnData"] == [{}]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", OrderString="FID") == [["CK-OLD"], ["CK-GOOD"]]


def test_required_fields_conversions_and_options(sdk: K3CloudApiSdk) -> None:
    empty = {"FBillTypeID": {"FNumber": "NOPE"}, "FEntity": [{"FMaterialID": {"FNumber": PLAIN_SKU}}]}
    assert [(f, m) for _, f, m in errors(batch_save(sdk, empty))] == [
        ("FBillTypeID", "字段“单据类型”是必填项"),  # an unknown type stays refused; FDate is defaulted
        ("FSaleOrgId", "字段“销售组织”是必填项"),
        ("FCustomerID", "字段“客户”是必填项"),
        ("FStockOrgId", "字段“发货组织”是必填项"),
        ("FOwnerIdHead", "字段“货主”是必填项"),
        ("FSettleCurrID", "字段“结算币别”是必填项"),
        ("FSettleOrgID", "字段“结算组织”是必填项"),
        ("FRealQty", must_input(1, "实发数量")),
        ("FStockID", must_input(1, "仓库")),
        ("FOwnerID", must_input(1, "货主")),
    ]
    unit = batch_save(sdk, bill("CK-U", rows=[row(FUnitID={"FNumber": "BOX"}), row(FStockStatusID={"FNumber": "?"})]))
    assert errors(unit) == [(0, "FUnitID", must_input(1, "库存单位")), (0, "FStockStatusID", must_input(2, "库存状态"))]
    verified = batch_save(sdk, bill("CK-V", rows=[row(UNKNOWN_SKU)]), IsVerifyBaseDataField=True)
    assert errors(verified)[0] == (
        0,
        "FMaterialID",
        f"{ROW.format(1)}字段“物料编码”(FMaterialID)的值“{UNKNOWN_SKU}”在系统中不存在，或者未审核、已禁用",
    )
    bad_date = batch_save(sdk, bill("CK-D", rows=[row(FProduceDate="0000-00-00 00:00:00")]))
    assert errors(bad_date)[0][1] == "FProduceDate" and "DateTime" in errors(bad_date)[0][2]
    audited = batch_save(sdk, bill(None), bill(None), IsAutoSubmitAndAudit="true", SubSystemId="21")
    numbers = [s["Number"] for s in audited["ResponseStatus"]["SuccessEntitys"]]
    assert numbers == ["XSCKD00000001", "XSCKD00000002"]
    assert query(sdk, "SAL_OUTSTOCK", "FDocumentStatus", "FBillNo like 'XSCKD%'") == [["C"], ["C"]]
    polled = json.loads(sdk.BatchSaveQuery("SAL_OUTSTOCK", {"Model": [bill("CK-ASYNC")]}))  # async mode
    assert polled["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "CK-ASYNC"
    single = json.loads(sdk.Save("SAL_OUTSTOCK", {"Model": bill("CK-SINGLE")}))["Result"]
    assert single["Id"] == single["ResponseStatus"]["SuccessEntitys"][0]["Id"]
    assert single["Number"] == "CK-SINGLE" and single["NeedReturnData"] == [{}]


def test_fentity_inside_subheadentity_is_not_a_subhead_field(sdk: K3CloudApiSdk) -> None:
    model = bill("CK-NESTED")
    model["SubHeadEntity"]["FEntity"] = model.pop("FEntity")
    result = batch_save(sdk, model)
    assert errors(result) == [(0, "FEntity", "元数据中标识为FEntity的字段不存在")]
    assert result["ResponseStatus"]["MsgCode"] == 9
    no_rows = bill("CK-NOROWS", rows=[])
    assert errors(batch_save(sdk, no_rows)) == [(0, "FEntity", "单据体实体【明细信息】至少需要录入一行分录")]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []


def test_lot_rule_for_batch_managed_materials(sdk: K3CloudApiSdk) -> None:
    no_lot = batch_save(sdk, bill("CK-NOLOT", rows=[row(BATCH_SKU, FLot={"FNumber": ""})]))
    assert errors(no_lot) == [(0, "FLot", must_input(1, "批号"))]
    lot_rows = [row(BATCH_SKU), row(PLAIN_SKU), row(BATCH_SKU, qty="1")]  # one lot on two rows
    assert saved(batch_save(sdk, bill("CK-LOT", rows=lot_rows)))
    keys = "FEntity_FSeq,FMaterialID.FNumber,FLot,FLot.FNumber,FMaterialID.FIsBatchManage"
    rows = query(sdk, "SAL_OUTSTOCK", keys, "FBillNo = 'CK-LOT'")
    lot_id = rows[0][2]
    assert rows == [
        [1, BATCH_SKU, lot_id, "20250822", True],
        [2, PLAIN_SKU, 0, None, False],
        [3, BATCH_SKU, lot_id, "20250822", True],
    ]
    lots = query(sdk, "BD_BatchMainFile", "FLOTID,FNumber,FMaterialID.FNumber")
    assert lots == [[lot_id, "20250822", BATCH_SKU]]


def test_amounts_are_computed_to_the_cent_with_exact_decimals(sdk: K3CloudApiSdk) -> None:
    rows = [
        row(qty="3", price="33.33"),  # 99.99 incl. 13 %
        row(qty="1", price="1.005"),  # sent below as a JSON number, read exactly: 1.005 -> 1.01 half-up
        row(qty="7", price="0.1", FEntryTaxRate="0"),
        row(qty="2", price="0", FIsFree=True),
    ]
    body = json.dumps({"formid": "SAL_OUTSTOCK", "data": {"Model": [bill("CK-AMT", rows=rows)]}})
    body = body.replace('"FTaxPrice": "1.005"', '"FTaxPrice": 1.005')
    assert '"FTaxPrice": 1.005' in body
    url = sdk.identify.ServerUrl + BATCH_SAVE + ".common.kdsvc"
    assert saved(logged_in(sdk.identify.ServerUrl).post(url, data=body, timeout=10).json()["Result"])
    keys = "FTaxPrice,FPrice,FAllAmount,FEntryTaxAmount,FAmount,FEntryTaxRate,FIsFree"
    got = query(sdk, "SAL_OUTSTOCK", keys, "FBillNo = 'CK-AMT'", OrderString="FEntity_FSeq")
    d = Decimal
    assert got == [
        [d("33.33"), d("29.495575"), d("99.99"), d("11.5"), d("88.49"), 13, False],
        [d("1.005"), d("0.889381"), d("1.01"), d("0.12"), d("0.89"), 13, False],
        [d("0.1"), d("0.1"), d("0.7"), 0, d("0.7"), 0, False],
        [0, 0, 0, 0, 0, 13, True],
    ]
    totals = query(sdk, "SAL_OUTSTOCK", "FBillAllAmount,FBillTaxAmount,FBillAmount", "FBillNo = 'CK-AMT'")
    assert totals == [[d("101.7"), d("11.62"), d("90.08")]]
    zero = batch_save(sdk, bill("CK-ZERO", rows=[row(qty="0.0000")]))
    assert errors(zero) == [(0, "FRealQty", must_input(1, "实发数量"))]


# ----------------------------------------------------------------------------------------- queries
def test_execute_bill_query_filters_rows_paging_and_errors(sdk: K3CloudApiSdk) -> None:
    other_shop = CATALOG.shops[1].shop_no
    batch_save(
        sdk,
        bill("CK-A", FDate="2024-12-01"),
        bill("CK-B", rows=[row(), row(BATCH_SKU, qty="5")]),
        bill(
            "CK-C", FDate="2024-12-06 08:00:00", FCustomerID={"FNumber": other_shop}, FSaleOrgId={"FNumber": other_shop}
        ),
    )
    in_list = query(sdk, "SAL_OUTSTOCK", "FBillNo", "FBillNo in ('CK-A', 'ck-c', 'CK-X')")
    assert in_list == [["CK-A"], ["CK-C"]]
    entry_rows = query(sdk, "SAL_OUTSTOCK", "FBillNo,FEntity_FEntryID,FMaterialID.FNumber,FRealQty", "FBillNo = 'CK-B'")
    assert [(r[0], r[2], r[3]) for r in entry_rows] == [("CK-B", PLAIN_SKU, 2), ("CK-B", BATCH_SKU, 5)]
    assert entry_rows[0][1] < entry_rows[1][1]
    dated = query(sdk, "SAL_OUTSTOCK", "FBillNo", "FDate >= '2024-12-02' AND FDate < '2024-12-06'")
    assert dated == [["CK-B"]]
    mixed = query(
        sdk,
        "SAL_OUTSTOCK",
        "FBillNo",
        f"(FCustomerID.FNumber <> '{SHOP}' OR FBillNo = 'CK-A') and not FBillNo like '%B'",
        OrderString="FBillNo DESC",
    )
    assert mixed == [["CK-C"], ["CK-A"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "FRealQty > 4") == [["CK-B"]]  # a row filter joins the rows
    array = [
        {"Left": "(", "FieldName": "FBillNo", "Compare": "67", "Value": "CK-A", "Right": "", "Logic": "1"},
        {"Left": "", "FieldName": "FBillNo", "Compare": "17", "Value": "-C", "Right": ")", "Logic": 0},
    ]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", array) == [["CK-A"], ["CK-C"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", StartRow=1, Limit=1) == [["CK-B"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", TopRowCount=2, StartRow=1) == [["CK-B"]]
    objects = json.loads(
        sdk.BillQuery(
            {"FormId": "SAL_OUTSTOCK", "FieldKeys": "FBillNo,FSettleCurrID.FName", "FilterString": "FBillNo='CK-A'"}
        )
    )
    assert objects == [{"FBillNo": "CK-A", "FSettleCurrID.FName": "人民币"}]

    def error(form: str, keys: str, filter_: str = "") -> tuple[int, str]:
        data = {"FormId": form, "FieldKeys": keys, "FilterString": filter_}
        status = json.loads(sdk.ExecuteBillQuery(data))[0][0]["Result"]["ResponseStatus"]
        return status["MsgCode"], status["Errors"][0]["Message"]

    assert error("NO_SUCH_FORM", "FID") == (4, "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除。")
    assert error("SAL_OUTSTOCK", "FID,FNoSuchField") == (9, "元数据中标识为FNoSuchField的字段不存在")
    assert error("SAL_OUTSTOCK", "") == (8, "data数据包中的参数FieldKeys的值不能为空。")
    assert error("SAL_OUTSTOCK", "FID", "FBillNo = = 'x'")[0] == 4


def test_master_data_queries(sdk: K3CloudApiSdk) -> None:
    keys = "FMATERIALID,FNumber,FName,FIsBatchManage,FBaseUnitId.FNumber,FUseOrgId.FNumber,FMasterId"
    materials = query(
        sdk,
        "BD_MATERIAL",
        keys,
        f"FNumber in ('{BATCH_SKU}', '{PLAIN_SKU}', '{UNKNOWN_SKU}')",
        OrderString="FNumber,FMATERIALID",
    )
    warehouses = [w.warehouse_no for w in CATALOG.warehouses]
    expected = [
        (n, batch, "Pcs", org) for n, batch in sorted([(BATCH_SKU, True), (PLAIN_SKU, False)]) for org in warehouses
    ]  # one record per use organisation: created in WH001, allocated
    assert [(m[1], m[3], m[4], m[5]) for m in materials] == expected
    assert {m[6] for m in materials if m[1] == PLAIN_SKU} == {materials[3][0]}  # one FMasterId
    customers = query(
        sdk, "BD_Customer", "FNumber,FName,FCreateOrgId.FNumber,FUseOrgId.FNumber,FForbidStatus", f"FNumber = '{SHOP}'"
    )
    assert customers == [[SHOP, CATALOG.shops[0].shop_name, SHOP, SHOP, "A"]]
    orgs = {o[0] for o in query(sdk, "ORG_Organizations", "FNumber")}
    assert orgs == {s.shop_no for s in CATALOG.shops} | {w.warehouse_no for w in CATALOG.warehouses}
    stock = query(sdk, "BD_STOCK", "FStockId,FNumber,FName", "FNumber = 'WH002'")
    assert stock == [[400002, "WH002", CATALOG.warehouses[1].warehouse_name]]
    dept = query(sdk, "BD_Department", "FNumber,FName", "FNumber = 'BM000175'")
    assert dept == [["BM000175", "电商运营部"]]
    assert query(sdk, "bd_currency", "FCurrencyId,FNumber", "FNumber = 'PRE001'") == [[1, "PRE001"]]


# ------------------------------------------------------------------------------------- persistence
def test_bills_and_counters_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "missing" / "kingdee"  # created on start
    with _serve(data_dir) as first:
        assert saved(batch_save(sdk_for(first.url), bill("CK-KEEP", rows=[row(BATCH_SKU)])))
    with _serve(data_dir) as second:
        sdk = sdk_for(second.url)
        again = batch_save(sdk, bill("CK-KEEP"), bill("CK-NEXT", rows=[row(BATCH_SKU)]))
        assert errors(again) == [(0, "FBillNo", DUPLICATE.format("CK-KEEP"))]
        assert again["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100002, "Number": "CK-NEXT", "DIndex": 1}]
        keys = "FID,FBillNo,FEntity_FEntryID,FLot,F_ora_Text_ckdh"
        rows = query(sdk, "SAL_OUTSTOCK", keys, OrderString="FID")
        assert [r[:3] for r in rows] == [[100001, "CK-KEEP", 100001], [100002, "CK-NEXT", 100002]]
        assert rows[0][3] == rows[1][3] and rows[0][4] == "CK-KEEP"  # the lot was found, not created twice


def test_cli_prints_url_first_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "emulators.kingdee", "--port", "0", "--data-dir", str(tmp_path / "cli")]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    timer = threading.Timer(10, proc.kill)
    timer.start()
    try:
        url = (proc.stdout.readline() if proc.stdout else "").rstrip("\n")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/k3cloud/")
        body = {
            "acctid": CREDS["acct_id"],
            "username": CREDS["username"],
            "appid": CREDS["app_id"],
            "appsecret": CREDS["app_secret"],
            "lcid": 2052,
        }
        assert post(url, LOGIN_BY_APP_SECRET, body).json()["LoginResultType"] == 1
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        timer.cancel()
        proc.kill()
        if proc.stdout:
            proc.stdout.close()
    assert (tmp_path / "cli" / "kingdee.sqlite3").exists()
