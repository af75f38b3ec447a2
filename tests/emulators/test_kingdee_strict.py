"""The Kingdee emulator is no more lenient than a real server: each request a buggy client could send is
refused over loopback the way the spec (shared/protocols/kingdee-webapi.md) says, or as the emulator's
docstrings decide where the spec leaves the answer open."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from emulators.kingdee import KingdeeHTTPServer
from emulators.kingdee.__main__ import parse_args
from emulators.kingdee.server import DEFAULT_MAX_REQUEST_BYTES
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    BATCH_SKU,
    BILL_QUERY,
    CATALOG,
    PLAIN_SKU,
    QUERY,
    ROW,
    SHOP,
    STUB,
    _serve,
    batch_save,
    bill,
    errors,
    logged_in,
    must_input,
    post,
    query,
    row,
    saved,
    sdk_for,
)

SAVE = STUB + "DynamicFormService.Save"
UNKNOWN = "元数据中标识为{}的字段不存在"
OTHER_SHOP = CATALOG.shops[1].shop_no
OTHER_WAREHOUSE = CATALOG.warehouses[1].warehouse_no
DISABLED_SKU = "EOL9001-01"
DISABLED_CUSTOMER = "CLOSED005"
TOO_LARGE = "超过了最大请求长度"


@pytest.fixture()
def server(tmp_path: Path) -> Any:
    with _serve(tmp_path / "kingdee") as srv:
        yield srv


@pytest.fixture()
def sdk(server: KingdeeHTTPServer) -> K3CloudApiSdk:
    return sdk_for(server.url)


def query_error(sdk: K3CloudApiSdk, **data: Any) -> tuple[int, str]:
    """MsgCode and message of a refused ExecuteBillQuery (wrapped ``[[{"Result": …}]]``)."""
    answer = json.loads(sdk.ExecuteBillQuery({"FormId": "SAL_OUTSTOCK", **data}))
    status = answer[0][0]["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False
    return status["MsgCode"], status["Errors"][0]["Message"]


def status_of(result: dict[str, Any]) -> dict[str, Any]:
    return result["ResponseStatus"]


# -------------------------------------------------------------------------- 1. unknown query fields
def test_queries_refuse_fields_the_form_does_not_have(sdk: K3CloudApiSdk) -> None:
    assert saved(batch_save(sdk, bill("CK-Q1", FSalesManID={"FNumber": "E001"})))
    # the tenant's custom fields and the form's standard fields are known, as are the modelled ones
    keys = "FBillNo,F_ora_Text_ysdh,F_ora_Text_ckdh,FSalesManID.FNumber,FAuxPropId.FNumber"
    assert query(sdk, "SAL_OUTSTOCK", keys) == [["CK-Q1", "TB-778899", "CK-Q1", "E001", "03"]]
    for where in (
        {"FieldKeys": "FBillNo,F_ora_Text_nope"},
        {"FieldKeys": "FBillNo", "FilterString": "F_ora_Text_nope = 'x'"},
        {"FieldKeys": "FBillNo", "OrderString": "F_ora_Text_nope DESC"},
    ):
        assert query_error(sdk, **where) == (9, UNKNOWN.format("F_ora_Text_nope"))
    assert query_error(sdk, FieldKeys="FNoSuchField") == (9, UNKNOWN.format("FNoSuchField"))
    objects = json.loads(sdk.BillQuery({"FormId": "SAL_OUTSTOCK", "FieldKeys": "F_XYZ_Anything"}))
    assert objects[0]["Result"]["ResponseStatus"]["MsgCode"] == 9  # BillQuery: the error is a row object


def test_custom_fields_option_sets_what_the_tenant_has(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", custom_fields="F_ora_Text_ysdh,FEntity.F_ora_Line,SubHeadEntity.F_ora_Fin") as srv:
        sdk = sdk_for(srv.url)
        model = bill("CK-CF", rows=[row(F_ora_Line="L1")])
        model["SubHeadEntity"]["F_ora_Fin"] = "财务备注"
        del model["F_ora_Text_ckdh"]  # not a field of this tenant
        assert saved(batch_save(sdk, model))
        rows = query(sdk, "SAL_OUTSTOCK", "FBillNo,F_ora_Text_ysdh,F_ora_Fin,F_ora_Line")
        assert rows == [["CK-CF", "TB-778899", "财务备注", "L1"]]
        assert query_error(sdk, FieldKeys="F_ora_Text_ckdh") == (9, UNKNOWN.format("F_ora_Text_ckdh"))
        refused = batch_save(sdk, bill("CK-CF2"))  # the default bill sends F_ora_Text_ckdh
        assert errors(refused) == [(0, "F_ora_Text_ckdh", UNKNOWN.format("F_ora_Text_ckdh"))]
    with _serve(tmp_path / "kd2", custom_fields="") as srv:  # a tenant without extensions
        assert query_error(sdk_for(srv.url), FieldKeys="F_ora_Text_ysdh")[0] == 9
    with pytest.raises(ValueError, match="custom field"):
        _serve(tmp_path / "kd3", custom_fields="FNoEntity.F_x")
    assert parse_args([]).custom_fields == "F_ora_Text_ysdh,F_ora_Text_ckdh"
    assert parse_args(["--custom-fields", ""]).custom_fields == ""


# --------------------------------------------------------------------------- 2. unknown Model keys
def test_save_refuses_keys_the_form_does_not_have(sdk: K3CloudApiSdk, server: KingdeeHTTPServer) -> None:
    head = bill("CK-U1", F_ora_Text_typo="x", FShopNumber="TMALL")
    sub = bill("CK-U2")
    sub["SubHeadEntity"]["FSettleCurrIDX"] = {"FNumber": "PRE001"}
    top = bill("CK-U3", FSettleCurrID={"FNumber": "PRE001"})  # a sub-head field at the top level
    rows = bill("CK-U4", rows=[row(FNoSuch=1), row(FNoSuch=2, FCustomerID={"FNumber": SHOP})])
    result = batch_save(sdk, head, bill("CK-OK"), sub, top, rows)
    assert status_of(result)["MsgCode"] == 9 and status_of(result)["IsSuccess"] is False
    assert errors(result) == [  # each unknown key once per bill, nothing else checked on those bills
        (0, "F_ora_Text_typo", UNKNOWN.format("F_ora_Text_typo")),
        (0, "FShopNumber", UNKNOWN.format("FShopNumber")),
        (2, "FSettleCurrIDX", UNKNOWN.format("FSettleCurrIDX")),
        (3, "FSettleCurrID", UNKNOWN.format("FSettleCurrID")),
        (4, "FNoSuch", UNKNOWN.format("FNoSuch")),
        (4, "FCustomerID", UNKNOWN.format("FCustomerID")),
    ]
    assert status_of(result)["SuccessEntitys"] == [{"Id": 100001, "Number": "CK-OK", "DIndex": 1}]
    single = post(
        server.url, SAVE, {"formid": "SAL_OUTSTOCK", "data": {"Model": bill("CK-U5", FOops=1)}}, logged_in(server.url)
    ).json()["Result"]
    assert errors(single) == [(0, "FOops", UNKNOWN.format("FOops"))] and status_of(single)["MsgCode"] == 9
    # the form's standard fields (spec §3.3) that the emulator does not interpret are kept, not refused
    standard = bill("CK-STD", FSalesManID={"FNumber": "E001"}, rows=[row(FSrcBillNo="SO-1", FDiscountRate="0")])
    standard["SubHeadEntity"]["FExchangeTypeID"] = {"FNumber": "HLTX01_SYS"}
    assert saved(batch_save(sdk, standard))
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", OrderString="FID") == [["CK-OK"], ["CK-STD"]]


# ----------------------------------------------------------------------------- 3. BatchSave's Model
def test_batch_save_takes_an_array_of_models_only(sdk: K3CloudApiSdk) -> None:
    answer = json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": bill("CK-OBJ")}))["Result"]
    assert status_of(answer)["MsgCode"] == 8
    assert errors(answer) == [
        (0, None, "BatchSave接口的参数Model必须是JSON数组（每张单据一个数据包），单张单据请用Save。")
    ]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []
    assert json.loads(sdk.Save("SAL_OUTSTOCK", {"Model": bill("CK-OBJ")}))["Result"]["Number"] == "CK-OBJ"
    as_array = json.loads(sdk.Save("SAL_OUTSTOCK", {"Model": [bill("CK-ARR")]}))["Result"]
    assert status_of(as_array)["MsgCode"] == 8


# ---------------------------------------------------------------------------------------- 4. FLot
def test_a_bare_lot_number_is_not_a_lot(sdk: K3CloudApiSdk) -> None:
    bare = batch_save(sdk, bill("CK-LOT1", rows=[row(BATCH_SKU, FLot="20250822")]))
    assert errors(bare) == [(0, "FLot", must_input(1, "批号"))]
    verified = batch_save(sdk, bill("CK-LOT2", rows=[row(BATCH_SKU, FLot="20250822")]), IsVerifyBaseDataField=True)
    assert errors(verified)[0] == (
        0,
        "FLot",
        f"{ROW.format(1)}字段“批号”(FLot)的值“20250822”在系统中不存在，或者未审核、已禁用",
    )
    assert saved(batch_save(sdk, bill("CK-LOT3", rows=[row(BATCH_SKU)])))  # {"FNumber": "20250822"}
    lot_id = query(sdk, "SAL_OUTSTOCK", "FLot", "FBillNo = 'CK-LOT3'")[0][0]
    by_id = batch_save(
        sdk, bill("CK-LOT4", rows=[row(BATCH_SKU, FLot=str(lot_id)), row(BATCH_SKU, FLot={"FLOTID": lot_id})])
    )
    assert saved(by_id)  # a bare value is the lot's internal id, as for any base-data field
    assert query(sdk, "SAL_OUTSTOCK", "FLot.FNumber", "FBillNo = 'CK-LOT4'") == [["20250822"], ["20250822"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "FBillNo like 'CK-LOT%'") == [["CK-LOT3"], ["CK-LOT4"]]


# ------------------------------------------------------------------- 5. Numbers array, Ids string
def test_operations_take_numbers_as_an_array_and_ids_as_a_comma_string(sdk: K3CloudApiSdk) -> None:
    assert saved(batch_save(sdk, bill("CK-OP1"), bill("CK-OP2")))

    def submit(**data: Any) -> dict[str, Any]:
        return json.loads(sdk.Submit("SAL_OUTSTOCK", data))["Result"]["ResponseStatus"]

    comma = submit(Numbers="CK-OP1,CK-OP2")
    assert (comma["MsgCode"], comma["Errors"][0]["Message"]) == (8, "data数据包中的参数Numbers必须是单据编号的数组。")
    array = submit(Ids=[100001, 100002])
    assert (array["MsgCode"], array["Errors"][0]["Message"]) == (
        8,
        "data数据包中的参数Ids必须是以逗号分隔的内码字符串，不能是数组。",
    )
    for name in ("Audit", "UnAudit", "Delete"):
        refused = json.loads(getattr(sdk, name)("SAL_OUTSTOCK", {"Ids": ["100001"]}))["Result"]["ResponseStatus"]
        assert refused["MsgCode"] == 8
    assert query(sdk, "SAL_OUTSTOCK", "FDocumentStatus", OrderString="FID") == [["A"], ["A"]]  # nothing done
    assert submit(Numbers=["CK-OP1"], Ids="")["IsSuccess"] is True
    assert submit(Ids="100002")["IsSuccess"] is True
    assert query(sdk, "SAL_OUTSTOCK", "FDocumentStatus", OrderString="FID") == [["B"], ["B"]]


# -------------------------------------------------------------------- 6./7. FieldKeys and Limit
def test_field_keys_must_be_a_comma_string_and_limit_at_most_10000(sdk: K3CloudApiSdk) -> None:
    assert saved(batch_save(sdk, bill("CK-FK")))
    assert query_error(sdk, FieldKeys=["FID", "FBillNo"]) == (
        8,
        "data数据包中的参数FieldKeys必须是以逗号分隔的字符串，不能是数组。",
    )
    assert query_error(sdk, FieldKeys="FBillNo", Limit=10001) == (8, "data数据包中的参数Limit的值不能超过10000。")
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", Limit=10000) == [["CK-FK"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", Limit=0) == [["CK-FK"]]


# ------------------------------------------------------------------------------- 8. request size
def _body_of(size: int) -> bytes:
    """A BatchSave body of exactly ``size`` bytes (padded in a standard text field)."""
    model = bill("CK-BIG", FNote="")
    body = {"formid": "SAL_OUTSTOCK", "data": {"Model": [model]}}
    model["FNote"] = "x" * (size - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def test_a_request_over_max_request_bytes_gets_asp_net_s_500(tmp_path: Path) -> None:
    limit = 64 * 1024
    with _serve(tmp_path / "kd", max_request_bytes=limit) as srv:
        http = logged_in(srv.url)
        url = srv.url + BATCH_SAVE + ".common.kdsvc"
        refused = http.post(url, data=_body_of(limit + 1), timeout=10)
        assert refused.status_code == 500 and TOO_LARGE in refused.text
        assert refused.headers["Content-Type"].startswith("text/html") and refused.headers["Connection"] == "close"
        chunked = http.post(url, data=iter([_body_of(limit + 1)[:40000], _body_of(limit + 1)[40000:]]), timeout=10)
        assert chunked.status_code == 500 and TOO_LARGE in chunked.text
        sdk = sdk_for(srv.url)
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []  # nothing was done
        exact = http.post(url, data=_body_of(limit), timeout=10)
        assert exact.json()["Result"]["ResponseStatus"]["IsSuccess"] is True
        big_note = "长" * 30000  # the SDK escapes non-ASCII: 6 bytes a character on the wire
        with pytest.raises(RuntimeError, match=TOO_LARGE):
            sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill("CK-SDK", FNote=big_note)]})
        assert saved(batch_save(sdk, bill("CK-SDK")))  # and it goes on working
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo", OrderString="FID") == [["CK-BIG"], ["CK-SDK"]]


def test_the_default_limit_is_asp_net_s_4_mb_and_0_is_none(tmp_path: Path) -> None:
    assert DEFAULT_MAX_REQUEST_BYTES == 4 * 1024 * 1024 == parse_args([]).max_request_bytes
    assert parse_args(["--max-request-bytes", "0"]).max_request_bytes == 0
    with _serve(tmp_path / "kd") as srv:
        assert srv.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
        url = srv.url + BATCH_SAVE + ".common.kdsvc"
        assert logged_in(srv.url).post(url, data=_body_of(DEFAULT_MAX_REQUEST_BYTES + 1), timeout=30).status_code == 500
    with _serve(tmp_path / "kd0", max_request_bytes=0) as srv:
        url = srv.url + BATCH_SAVE + ".common.kdsvc"
        answer = logged_in(srv.url).post(url, data=_body_of(DEFAULT_MAX_REQUEST_BYTES + 1), timeout=30)
        assert answer.json()["Result"]["ResponseStatus"]["IsSuccess"] is True


# ------------------------------------------------------------------------ 9. organisation control
def test_base_data_is_used_only_in_its_organisations(sdk: K3CloudApiSdk) -> None:
    customer_elsewhere = bill("CK-ORG1", FCustomerID={"FNumber": OTHER_SHOP})  # sale org is SHOP
    stock_elsewhere = bill("CK-ORG2", rows=[row(FStockID={"FNumber": OTHER_WAREHOUSE})])  # stock org WAREHOUSE
    result = batch_save(sdk, customer_elsewhere, stock_elsewhere)
    assert errors(result) == [(0, "FCustomerID", "字段“客户”是必填项"), (1, "FStockID", must_input(1, "仓库"))]
    verified = batch_save(sdk, customer_elsewhere, IsVerifyBaseDataField=True)
    assert (0, "FCustomerID", f"字段“客户”(FCustomerID)的值“{OTHER_SHOP}”在系统中不存在，或者未审核、已禁用") in errors(
        verified
    )
    # in their own organisations the same numbers are fine
    own = bill(
        "CK-ORG3",
        FSaleOrgId={"FNumber": OTHER_SHOP},
        FCustomerID={"FNumber": OTHER_SHOP},
        FStockOrgId={"FNumber": OTHER_WAREHOUSE},
        FOwnerIdHead={"FNumber": OTHER_WAREHOUSE},
        rows=[row(FStockID={"FNumber": OTHER_WAREHOUSE}, FOwnerId={"FNumber": OTHER_WAREHOUSE})],
    )
    assert saved(batch_save(sdk, own))
    # a material is usable in the organisations it was created in or allocated to
    material = {"FNumber": "ONLY-WH2", "FName": "只在华南仓", "FCreateOrgId": {"FNumber": OTHER_WAREHOUSE}}
    created = json.loads(sdk.Save("BD_MATERIAL", {"Model": material}))["Result"]
    assert created["ResponseStatus"]["IsSuccess"] is True
    in_wh1 = batch_save(sdk, bill("CK-ORG4", rows=[row("ONLY-WH2")]))
    assert errors(in_wh1) == [(0, "FMaterialID", must_input(1, "物料编码"))]
    in_wh2 = dict(
        own,
        FBillNo="CK-ORG5",
        FEntity=[row("ONLY-WH2", FStockID={"FNumber": OTHER_WAREHOUSE}, FOwnerId={"FNumber": OTHER_WAREHOUSE})],
    )
    assert saved(batch_save(sdk, in_wh2))
    keys = "FBillNo,FCustomerID.FUseOrgId.FNumber,FMaterialID.FUseOrgId.FNumber,FStockID.FUseOrgId.FNumber"
    assert query(sdk, "SAL_OUTSTOCK", keys, "FBillNo = 'CK-ORG3'") == [
        ["CK-ORG3", OTHER_SHOP, OTHER_WAREHOUSE, OTHER_WAREHOUSE]
    ]  # the records of those organisations


# ------------------------------------------------------------------------------- 10. disabled data
def test_disabled_base_data_counts_as_missing_and_queries_show_it(sdk: K3CloudApiSdk) -> None:
    result = batch_save(
        sdk, bill("CK-DIS1", FCustomerID={"FNumber": DISABLED_CUSTOMER}), bill("CK-DIS2", rows=[row(DISABLED_SKU)])
    )
    assert errors(result) == [(0, "FCustomerID", "字段“客户”是必填项"), (1, "FMaterialID", must_input(1, "物料编码"))]
    verified = batch_save(sdk, bill("CK-DIS3", rows=[row(DISABLED_SKU)]), IsVerifyBaseDataField="true")
    assert errors(verified)[0] == (
        0,
        "FMaterialID",
        f"{ROW.format(1)}字段“物料编码”(FMaterialID)的值“{DISABLED_SKU}”在系统中不存在，或者未审核、已禁用",
    )
    materials = query(
        sdk,
        "BD_MATERIAL",
        "FNumber,FForbidStatus",
        f"FNumber in ('{DISABLED_SKU}', '{PLAIN_SKU}')",
        OrderString="FNumber",
    )
    assert {tuple(m) for m in materials} == {(DISABLED_SKU, "B"), (PLAIN_SKU, "A")}
    assert query(sdk, "BD_Customer", "FNumber", "FForbidStatus = 'B'") == [[DISABLED_CUSTOMER]]
    enabled = query(
        sdk, "BD_Customer", "FNumber", f"FNumber in ('{SHOP}', '{DISABLED_CUSTOMER}') AND FForbidStatus = 'A'"
    )
    assert enabled == [[SHOP]]
    taken = json.loads(
        sdk.Save(
            "BD_Customer", {"Model": {"FNumber": DISABLED_CUSTOMER, "FName": "x", "FCreateOrgId": {"FNumber": SHOP}}}
        )
    )["Result"]
    assert errors(taken)[0][2] == f"违反字段唯一性要求：编码唯一。[{DISABLED_CUSTOMER}]在当前系统中已经被使用。"
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []


def test_plain_http_query_errors_are_wrapped(server: KingdeeHTTPServer) -> None:
    http = logged_in(server.url)
    answer = post(server.url, QUERY, {"data": {"FormId": "SAL_OUTSTOCK", "FieldKeys": ["FID"]}}, http).json()
    assert answer[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 8
    objects = post(
        server.url, BILL_QUERY, {"data": {"FormId": "SAL_OUTSTOCK", "FieldKeys": "FID", "Limit": 20000}}, http
    ).json()
    assert objects[0]["Result"]["ResponseStatus"]["MsgCode"] == 8
