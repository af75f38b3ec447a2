"""SAL_RETURNSTOCK (销售退货单) in the Kingdee emulator, over loopback with the official SDK and plain HTTP
(kingdee-returnstock-instock.md §2, §5, §6); also auto-numbering and custom-field look-ups on every form."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from emulators.kingdee import KingdeeHTTPServer
from emulators.kingdee.__main__ import parse_args
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    BATCH_SKU,
    CATALOG,
    DUPLICATE,
    PLAIN_SKU,
    QUERY,
    ROW,
    SESSION_LOST,
    SHOP,
    STUB,
    UNKNOWN_SKU,
    WAREHOUSE,
    _serve,
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

FORM = "SAL_RETURNSTOCK"
OTHER_SHOP = CATALOG.shops[1].shop_no
UNKNOWN = "元数据中标识为{}的字段不存在"


@pytest.fixture()
def server(tmp_path: Path) -> Any:
    with _serve(tmp_path / "kingdee") as srv:
        yield srv


@pytest.fixture()
def sdk(server: KingdeeHTTPServer) -> K3CloudApiSdk:
    return sdk_for(server.url)


def ret(
    number: str | None = "RK2401150003", *, rows: list[dict[str, Any]] | None = None, **head: Any
) -> dict[str, Any]:
    """A return shaped like the spec's canonical request (§2.8) and the project's mapping (§4.3)."""
    model: dict[str, Any] = {
        "FID": 0,
        "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
        "FDate": "2024-01-15 10:21:07",
        "FSaleOrgId": {"FNumber": SHOP},
        "FStockOrgId": {"FNumber": WAREHOUSE},
        "FRetcustId": {"FNumber": SHOP},
        "FOwnerTypeIdHead": "BD_OwnerOrg",
        "FOwnerIdHead": {"FNumber": WAREHOUSE},
        "FHeadNote": "TK2401150001 尺码不合适",
        "SubHeadEntity": {
            "FSettleOrgId": {"FNumber": SHOP},
            "FSettleCurrId": {"FNumber": "PRE001"},
            "FExchangeTypeId": {"FNumber": "HLTX01_SYS"},
            "FThirdBillNo": number or "",
        },
        "FEntity": rows if rows is not None else [ret_row()],
    }
    if number is not None:
        model["FBillNo"] = number
    model.update(head)
    return model


def ret_row(material: str = PLAIN_SKU, qty: Any = 1, price: Any = "59.9", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "FENTRYID": 0,
        "FRowType": "Standard",
        "FMaterialId": {"FNumber": material},
        "FRealQty": qty,
        "FTaxPrice": price,
        "FEntryTaxRate": 13,
        "FIsFree": False,
        "FReturnType": {"FNumber": "THLX01_SYS"},
        "FOwnerTypeId": "BD_OwnerOrg",
        "FOwnerId": {"FNumber": WAREHOUSE},
        "FStockId": {"FNumber": WAREHOUSE},
        "FLot": {"FNumber": "20250822"},
        "FSrcBillNo": "CK2401100042",
        "FNote": "tid 3849201938475",
    }
    entry.update(extra)
    return entry


def save(sdk: K3CloudApiSdk, *models: dict[str, Any], form: str = FORM, **options: Any) -> dict[str, Any]:
    return json.loads(sdk.BatchSave(form, {"Model": list(models), **options}))["Result"]


def op(sdk: K3CloudApiSdk, name: str, form: str = FORM, **data: Any) -> dict[str, Any]:
    return json.loads(getattr(sdk, name)(form, data))["Result"]["ResponseStatus"]


def level(srv: KingdeeHTTPServer, material: str, stock: str = WAREHOUSE) -> Decimal:
    master = srv.emulator.master
    m, s = master.find("BD_MATERIAL", material), master.find("BD_STOCK", stock)
    assert m is not None and s is not None
    return srv.emulator.inventory.level(m["FMATERIALID"], s["FSTOCKID"])


# ------------------------------------------------------------------------------------ official SDK
def test_official_sdk_saves_queries_views_and_deletes_a_return(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", verify_api_signature=True) as srv:
        sdk = sdk_for(srv.url)
        result = save(sdk, ret(), NeedReturnFields=["FBillNo", "FEntity.FEntryID", "SubHeadEntity.FBillAllAmount"])
        assert result["ResponseStatus"] == {
            "IsSuccess": True,
            "Errors": [],
            "SuccessMessages": [],
            "MsgCode": 0,
            "SuccessEntitys": [{"Id": 100001, "Number": "RK2401150003", "DIndex": 0}],
        }
        assert result["NeedReturnData"] == [
            {"FBillNo": "RK2401150003", "FEntity": [{"FEntryID": 100001}], "SubHeadEntity": {"FBillAllAmount": 59.9}}
        ]
        keys = (
            "FID,FBillNo,FDate,FDocumentStatus,FRetcustId.FNumber,FBillTypeID.FNumber,FEntity_FEntryId,"
            "FMaterialId.FNumber,FUnitID.FNumber,FRealQty,FReturnType.FNumber,FReturnType.FDataValue,FThirdBillNo"
        )
        rows = query(sdk, FORM, keys, "FBillNo in ('RK2401150003')")
        assert rows == [
            [
                100001,
                "RK2401150003",
                "2024-01-15T00:00:00",
                "A",
                SHOP,
                "XSTHD01_SYS",
                100001,
                PLAIN_SKU,
                "Pcs",
                1,
                "THLX01_SYS",
                "退货",
                "RK2401150003",
            ]
        ]
        single = json.loads(sdk.Save(FORM, {"Model": ret("RK-SINGLE")}))["Result"]
        assert single["Number"] == "RK-SINGLE" and single["Id"] == 100002

        view = json.loads(
            sdk.View(FORM, {"CreateOrgId": 0, "Number": "RK2401150003", "Id": "", "IsSortBySeq": "false"})
        )
        doc = view["Result"]["Result"]
        assert view["Result"]["ResponseStatus"]["IsSuccess"] is True
        assert (doc["Id"], doc["BillNo"], doc["RetcustId"]["Number"], doc["HeadNote"]) == (
            100001,
            "RK2401150003",
            SHOP,
            "TK2401150001 尺码不合适",
        )
        assert doc["SAL_RETURNSTOCKFIN"][0]["SettleCurrId"]["Name"] == [{"Key": 2052, "Value": "人民币"}]
        entry = doc["SAL_RETURNSTOCKENTRY"][0]
        assert (entry["Id"], entry["MaterialId"]["Number"], entry["ReturnType"]["Number"], entry["AllAmount"]) == (
            100001,
            PLAIN_SKU,
            "THLX01_SYS",
            59.9,
        )
        missing = json.loads(sdk.View(FORM, {"Number": "NOPE"}))["Result"]["ResponseStatus"]
        assert missing["IsSuccess"] is False
        assert missing["Errors"][0]["Message"] == "单据编号为“NOPE”的销售退货单不存在，或者已被删除。"

        deleted = op(sdk, "Delete", Numbers=["RK2401150003"])
        assert deleted["IsSuccess"] is True
        assert deleted["SuccessMessages"][0]["Message"] == "单据编号为“RK2401150003”的销售退货单，删除成功！"
        assert query(sdk, FORM, "FBillNo") == [["RK-SINGLE"]]
        assert json.loads(sdk.View(FORM, {"Number": "RK2401150003"}))["Result"]["ResponseStatus"]["IsSuccess"] is False


def test_submit_audit_unaudit_delete_and_the_stock_a_return_brings_back(server: KingdeeHTTPServer) -> None:
    sdk = sdk_for(server.url)
    before = level(server, PLAIN_SKU)
    assert saved(save(sdk, ret("RK-1", rows=[ret_row(qty=3)]), ret("RK-2")))
    assert op(sdk, "Submit", Numbers=["RK-1"])["IsSuccess"] is True
    early = op(sdk, "Audit", Numbers=["RK-1", "RK-2"])
    assert early["SuccessEntitys"] == [{"Id": 100001, "Number": "RK-1", "DIndex": 0}]
    assert [e["Message"] for e in early["Errors"]] == ["单据编号为“RK-2”的销售退货单，单据未提交，不允许审核！"]
    assert level(server, PLAIN_SKU) == before + 3  # the goods came back on audit
    again = op(sdk, "Audit", Numbers=["RK-1"])
    assert again["MsgCode"] == 11 and again["Errors"][0]["Message"] == "单据编号为“RK-1”的销售退货单，单据已经审核！"
    refused = op(sdk, "Delete", Numbers=["RK-1"])
    assert refused["Errors"][0]["Message"] == "单据编号为“RK-1”的销售退货单，单据已经审核，不允许删除！"
    assert op(sdk, "UnAudit", Numbers=["RK-1"])["IsSuccess"] is True
    assert level(server, PLAIN_SKU) == before
    assert query(sdk, FORM, "FBillNo,FDocumentStatus", OrderString="FID") == [["RK-1", "D"], ["RK-2", "A"]]
    # an FID of another form names no return; a stock-out's number is not a return's
    assert saved(json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill("RK-2")]}))["Result"])
    assert op(sdk, "Submit", Ids="100003")["MsgCode"] == 10
    assert op(sdk, "Delete", Numbers=["RK-1", "RK-2"])["IsSuccess"] is True
    assert query(sdk, FORM, "FBillNo") == [] and query(sdk, "SAL_OUTSTOCK", "FBillNo") == [["RK-2"]]
    # auto-audit on save receives the stock at once, without any negative-stock prompt
    assert saved(save(sdk, ret("RK-3", rows=[ret_row(qty=500)]), IsAutoSubmitAndAudit="true"))
    assert level(server, PLAIN_SKU) == before + 500
    assert query(sdk, FORM, "FDocumentStatus", "FBillNo = 'RK-3'") == [["C"]]


# ---------------------------------------------------------------------------------- validation
def test_required_fields_have_the_spec_s_messages(sdk: K3CloudApiSdk) -> None:
    empty = {"FEntity": [{"FMaterialId": {"FNumber": PLAIN_SKU}}]}
    assert [(f, m) for _, f, m in errors(save(sdk, empty))] == [
        ("FSaleOrgId", "字段“销售组织”是必填项"),  # FBillTypeID and FDate are defaulted
        ("FRetcustId", "字段“退货客户”是必填项"),
        ("FStockOrgId", "字段“库存组织”是必填项"),
        ("FOwnerIdHead", "字段“货主”是必填项"),
        ("FSettleCurrId", "字段“结算币别”是必填项"),
        ("FSettleOrgId", "字段“结算组织”是必填项"),
        ("FRealQty", must_input(1, "实退数量")),
        ("FReturnType", must_input(1, "退货类型")),
        ("FStockId", must_input(1, "仓库")),
        ("FOwnerId", must_input(1, "货主")),
    ]
    no_stock = ret_row()
    del no_stock["FStockId"]
    result = save(
        sdk,
        ret("RK-R1", FRetcustId={"FNumber": "NOBODY"}),
        ret("RK-R2", rows=[ret_row(), no_stock, ret_row(FReturnType={"FNumber": ""})]),
        ret("RK-R3", rows=[ret_row(UNKNOWN_SKU), ret_row(BATCH_SKU, FLot={"FNumber": ""})]),
        ret("RK-R4", FBillTypeID={"FNumber": "XSCKD01_SYS"}),  # a stock-out's bill type
        ret("RK-R5", rows=[ret_row(FReturnType={"FNumber": "QT"})]),  # a 退货原因 code as 退货类型
        ret("RK-OK", FReturnReason={"FNumber": "PS"}),
    )
    assert result["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100001, "Number": "RK-OK", "DIndex": 5}]
    assert errors(result) == [
        (3, "FBillTypeID", "字段“单据类型”是必填项"),
        (0, "FRetcustId", "字段“退货客户”是必填项"),
        (2, "FMaterialId", must_input(1, "物料编码")),
        (1, "FReturnType", must_input(3, "退货类型")),
        (4, "FReturnType", must_input(1, "退货类型")),
        (1, "FStockId", must_input(2, "仓库")),
        (2, "FLot", must_input(2, "批号")),
    ]
    assert query(sdk, FORM, "FReturnReason.FNumber,FReturnReason.FDataValue") == [["PS", "破损"]]
    verified = save(sdk, ret("RK-V", rows=[ret_row(FReturnType={"FNumber": "THLX99"})]), IsVerifyBaseDataField=True)
    assert errors(verified)[0] == (
        0,
        "FReturnType",
        f"{ROW.format(1)}字段“退货类型”(FReturnType)的值“THLX99”在系统中不存在，或者未审核、已禁用",
    )


def test_real_qty_must_be_positive(sdk: K3CloudApiSdk) -> None:
    result = save(sdk, ret("RK-Q0", rows=[ret_row(qty=0)]), ret("RK-QN", rows=[ret_row(), ret_row(qty="-1")]))
    assert errors(result) == [
        (0, "FRealQty", must_input(1, "实退数量")),
        (1, "FRealQty", f"{ROW.format(2)}【实退数量】必须大于0"),  # invented text (spec §2.6)
    ]
    assert query(sdk, FORM, "FBillNo") == []


def test_return_type_is_required_unless_the_server_defaults_it(tmp_path: Path) -> None:
    bare = ret_row()
    del bare["FReturnType"]
    with _serve(tmp_path / "strict") as srv:
        assert errors(save(sdk_for(srv.url), ret("RK-T", rows=[bare]))) == [
            (0, "FReturnType", must_input(1, "退货类型"))
        ]
    with _serve(tmp_path / "lenient", default_return_type="THLX01_SYS") as srv:
        sdk = sdk_for(srv.url)
        swap = ret_row(FReturnType={"FNumber": "THLX02_SYS"})
        assert saved(save(sdk, ret("RK-T", rows=[bare, swap])))
        assert query(sdk, FORM, "FReturnType.FNumber", OrderString="FEntity_FSeq") == [["THLX01_SYS"], ["THLX02_SYS"]]
        unknown = ret_row(FReturnType={"FNumber": "NOPE"})  # sent: not defaulted
        assert errors(save(sdk, ret("RK-T2", rows=[unknown]))) == [(0, "FReturnType", must_input(1, "退货类型"))]
    assert parse_args([]).default_return_type is None
    assert parse_args(["--default-return-type", "THLX01_SYS"]).default_return_type == "THLX01_SYS"


def test_duplicate_numbers_and_partial_batch_success(sdk: K3CloudApiSdk) -> None:
    assert saved(save(sdk, ret("RK-OLD")))
    result = save(sdk, ret("RK-NEW"), ret("RK-OLD"), ret("rk-new "), ret("RK-BAD", FRetcustId={"FNumber": OTHER_SHOP}))
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["ErrorCode"] == 500 and status["MsgCode"] == 11
    assert status["SuccessEntitys"] == [{"Id": 100002, "Number": "RK-NEW", "DIndex": 0}]
    assert errors(result) == [
        (3, "FRetcustId", "字段“退货客户”是必填项"),  # the customer of another sales organisation
        (1, "FBillNo", DUPLICATE.format("RK-OLD")),
        (2, "FBillNo", DUPLICATE.format("rk-new ")),
    ]
    assert result["NeedReturnData"] == [{}]
    # numbers are unique per form: a stock-out may carry a return's number
    assert saved(json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill("RK-OLD")]}))["Result"])
    assert query(sdk, FORM, "FBillNo", OrderString="FID") == [["RK-OLD"], ["RK-NEW"]]


def test_layout_aliases_nesting_and_unknown_keys(sdk: K3CloudApiSdk) -> None:
    aliased = ret("RK-ALIAS")
    aliased["SAL_RETURNSTOCK__FEntity"] = aliased.pop("FEntity")
    aliased["SAL_RETURNSTOCK__SubHeadEntity"] = aliased.pop("SubHeadEntity")
    assert saved(save(sdk, aliased))
    nested = ret("RK-NESTED")
    nested["SubHeadEntity"]["FEntity"] = nested.pop("FEntity")
    outstock_keys = ret("RK-KEYS", FCustomerID={"FNumber": SHOP}, F_ora_Text_ckdh="CK1")
    result = save(sdk, nested, outstock_keys)
    assert result["ResponseStatus"]["MsgCode"] == 9
    assert errors(result) == [
        (0, "FEntity", UNKNOWN.format("FEntity")),
        (1, "FCustomerID", UNKNOWN.format("FCustomerID")),  # SAL_OUTSTOCK's customer key is not a return's
        (1, "F_ora_Text_ckdh", UNKNOWN.format("F_ora_Text_ckdh")),  # custom fields are per form
    ]
    # the template's other fields are kept as sent and queryable; the stock key is case-insensitive
    standard = ret("RK-STD", FSalesManId={"FNumber": "E001"}, rows=[ret_row(FSTOCKID={"FNumber": WAREHOUSE})])
    standard["FEntity"][0].pop("FStockId")
    standard["FEntity"][0]["FTaxDetailSubEntity"] = [{"FDetailID": 0, "FTaxRate": 13}]
    assert saved(save(sdk, standard))
    assert query(sdk, FORM, "FSalesManId.FNumber,FStockId.FNumber", "FBillNo = 'RK-STD'") == [["E001", WAREHOUSE]]
    assert query(sdk, FORM, "FBillNo", OrderString="FID") == [["RK-ALIAS"], ["RK-STD"]]


def test_defaults_amounts_and_the_ground_truth(server: KingdeeHTTPServer) -> None:
    sdk = sdk_for(server.url)
    rows = [
        ret_row(qty=3, price="33.33"),
        ret_row(BATCH_SKU, qty="1", price="1.005", FLot={"FNumber": "L-RET"}),
        ret_row(qty=2, price="0", FIsFree=True),
    ]
    model = ret("RK-AMT", rows=rows)
    del model["FOwnerIdHead"], model["FBillTypeID"]
    assert saved(save(sdk, model))
    truth = server.emulator.read_bills("sal_returnstock")
    assert len(truth) == 1
    head = truth[0]
    assert (head["FID"], head["FBillNo"], head["FDocumentStatus"], head["FBillTypeID"]) == (
        100001,
        "RK-AMT",
        "A",
        "XSTHD01_SYS",
    )
    assert (head["FOwnerIdHead"], head["FReceiveCustId"], head["FSettleCustId"], head["FPayCustId"]) == (
        WAREHOUSE,
        SHOP,
        SHOP,
        SHOP,
    )
    sub = head["SubHeadEntity"]
    assert (sub["FSettleCurrId"], sub["FLocalCurrId"], sub["FExchangeRate"], sub["FIsIncludedTax"]) == (
        "PRE001",
        "PRE001",
        1,
        True,
    )
    assert sub["FExchangeTypeId"] == {"FNumber": "HLTX01_SYS"}  # kept as sent
    d = Decimal
    assert (sub["FBillAllAmount"], sub["FBillTaxAmount"], sub["FBillAmount"]) == (d("101.00"), d("11.62"), d("89.38"))
    lines = [
        (
            e["FSeq"],
            e["FMaterialId"],
            e["FRealQty"],
            e["FTaxPrice"],
            e["FAllAmount"],
            e["FEntryTaxAmount"],
            e["FAmount"],
        )
        for e in head["FEntity"]
    ]
    assert lines == [
        (1, PLAIN_SKU, 3, d("33.33"), d("99.99"), d("11.50"), d("88.49")),
        (2, BATCH_SKU, 1, d("1.005"), d("1.01"), d("0.12"), d("0.89")),
        (3, PLAIN_SKU, 2, 0, 0, 0, 0),
    ]
    first = head["FEntity"][0]
    assert (first["FStockstatusId"], first["FUnitID"], first["FSalUnitID"], first["FOwnerId"]) == (
        "KCZT01_SYS",
        "Pcs",
        "Pcs",
        WAREHOUSE,
    )
    assert (first["FSalUnitQty"], first["FSalBaseQty"], first["FPriceBaseQty"], first["FBaseunitQty"]) == (3, 3, 3, 3)
    assert (head["FEntity"][1]["FLot"], first["FLot"], first["FNote"]) == ("L-RET", None, "tid 3849201938475")
    assert query(sdk, "BD_BatchMainFile", "FNumber,FMaterialID.FNumber") == [["L-RET", BATCH_SKU]]
    with pytest.raises(KeyError):
        server.emulator.read_bills("BD_MATERIAL")


# -------------------------------------------------------------------------------------------- links
def _link(fid: Any, entry_id: Any, rule: str = "OutStock-SalReturnStock", **extra: Any) -> dict[str, Any]:
    return {
        "FEntity_Link_FRuleId": rule,
        "FEntity_Link_FSTableId": "0",
        "FEntity_Link_FSTableName": "T_SAL_OUTSTOCKENTRY",
        "FEntity_Link_FSBillId": str(fid),
        "FEntity_Link_FSId": str(entry_id),
        **extra,
    }


def test_links_to_the_original_stock_out(sdk: K3CloudApiSdk) -> None:
    outstock = json.loads(
        sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill("CK-SRC", rows=[row(qty="3"), row(BATCH_SKU, qty="1")])]})
    )
    assert saved(outstock["Result"])
    source = query(sdk, "SAL_OUTSTOCK", "FID,FEntity_FEntryID,FMaterialID.FNumber,FRealQty", "FBillNo = 'CK-SRC'")
    (fid, first_row, _, _), (_, second_row, _, _) = source
    linked = ret("RK-L1", rows=[ret_row(qty=2, FSrcBillTypeID="SAL_OUTSTOCK", FEntity_Link=[_link(fid, first_row)])])
    assert saved(save(sdk, linked))
    keys = "FBillNo,FSrcBillTypeID,FSrcBillNo"
    assert query(sdk, FORM, keys, "FBillNo = 'RK-L1'") == [["RK-L1", "SAL_OUTSTOCK", "CK2401100042"]]
    over = ret(
        "RK-L2",
        rows=[
            ret_row(qty=1, FEntity_Link=[_link(fid, first_row)]),
            ret_row(qty=1, FEntity_Link=[_link(fid, first_row)]),
        ],
    )
    result = save(
        sdk,
        over,  # 2 of 3 were returned: the second row of this bill is one too many
        ret("RK-L3", rows=[ret_row(FEntity_Link=[_link(fid, second_row)])]),  # another material
        ret("RK-L4", rows=[ret_row(FEntity_Link=[_link(fid, 999999)])]),  # no such row
        ret("RK-L5", rows=[ret_row(FEntity_Link=[_link(fid, first_row, rule="SaleOrder-SalReturnStock")])]),
        ret("RK-L6", rows=[ret_row(FEntity_Link={"FEntity_Link_FSBillId": fid})]),  # not an array
    )
    assert result["ResponseStatus"]["SuccessEntitys"] == []
    assert errors(result) == [
        (0, "FRealQty", f"{ROW.format(2)}实退数量1超过源单“CK-SRC”第【1】行的可退数量0。"),
        (1, "FMaterialId", f"{ROW.format(1)}物料“{PLAIN_SKU}”与源单“CK-SRC”第【2】行的物料“{BATCH_SKU}”不一致。"),
        (
            2,
            "FEntity_Link",
            f"{ROW.format(1)}关联关系的源单不存在：转换规则“OutStock-SalReturnStock”，源单内码“{fid}”，源单分录内码“999999”。",
        ),
        (
            3,
            "FEntity_Link",
            f"{ROW.format(1)}关联关系的源单不存在：转换规则“SaleOrder-SalReturnStock”，源单内码“{fid}”，源单分录内码“{first_row}”。",
        ),
        (4, "FEntity_Link", f"{ROW.format(1)}关联关系FEntity_Link必须是JSON数组，每个元素是一个JSON对象。"),
    ]
    assert saved(save(sdk, ret("RK-L7", rows=[ret_row(BATCH_SKU, FEntity_Link=[_link(fid, second_row)])])))
    assert saved(save(sdk, ret("RK-L8", rows=[ret_row(qty=1, FEntity_Link=[_link(fid, first_row)])])))  # the last one


# ---------------------------------------------------------------------------------------- faults
def test_faults_apply_to_returns(tmp_path: Path) -> None:
    body = {"formid": FORM, "data": {"Model": [ret("RK-F1")]}}
    with _serve(tmp_path / "nc", network_control_rate=1.0) as srv:
        sdk = sdk_for(srv.url)
        assert save(sdk, ret("RK-NET"))["ResponseStatus"]["MsgCode"] == 13
        assert op(sdk, "Audit", Numbers=["RK-NET"])["MsgCode"] == 13
        assert query(sdk, FORM, "FBillNo") == []
    with _serve(tmp_path / "lost", lost_response_rate=1.0) as srv:
        http = logged_in(srv.url)
        with pytest.raises(requests.ConnectionError):
            post(srv.url, BATCH_SAVE, body, http)
        assert post(srv.url, BATCH_SAVE, {"formid": FORM, "data": {"Model": [ret("RK-F2")]}}, http).status_code == 500
        numbers = post(srv.url, QUERY, {"data": {"FormId": FORM, "FieldKeys": "FBillNo", "OrderString": "FID"}}, http)
        assert numbers.json() == [["RK-F1"], ["RK-F2"]]  # committed, then the replies were lost
    with _serve(tmp_path / "err", error_rate=1.0) as srv:
        with pytest.raises(RuntimeError, match="500"):
            sdk_for(srv.url).BatchSave(FORM, body["data"])
    with _serve(tmp_path / "kd", max_request_bytes=4096) as srv:
        big = ret("RK-BIG", FHeadNote="x" * 5000)
        assert (
            post(srv.url, BATCH_SAVE, {"formid": FORM, "data": {"Model": [big]}}, logged_in(srv.url)).status_code == 500
        )
        lost = json.loads(sdk_for(srv.url, app_secret="0" * 32).BatchSave(FORM, body["data"]))
        assert lost["Result"]["ResponseStatus"]["Errors"][0]["Message"] == SESSION_LOST
        polled = json.loads(sdk_for(srv.url).BatchSaveQuery(FORM, body["data"]))  # async mode
        assert polled["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "RK-F1"


# ------------------------------------------------------------------ auto-numbering and custom fields
def test_every_form_numbers_bills_sent_without_fbillno(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        assert saved(save(sdk, ret("XSTHD000002")))  # a client took a number of the coding rule
        result = save(sdk, ret(None), ret(""), ret(None))
        numbers = [s["Number"] for s in result["ResponseStatus"]["SuccessEntitys"]]
        assert numbers == ["XSTHD000001", "XSTHD000003", "XSTHD000004"]
        outstock = json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill(None), bill("")]}))["Result"]
        assert [s["Number"] for s in outstock["ResponseStatus"]["SuccessEntitys"]] == ["XSCKD00000001", "XSCKD00000002"]
    with _serve(tmp_path / "kd") as srv:  # each form's sequence survives a restart
        sdk = sdk_for(srv.url)
        assert save(sdk, ret(None))["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "XSTHD000005"
        outstock = json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill(None)]}))["Result"]
        assert outstock["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "XSCKD00000003"


def test_a_bill_numbered_by_kingdee_is_found_by_its_custom_field(server: KingdeeHTTPServer) -> None:
    """The default tenant: SAL_OUTSTOCK has F_ora_Text_ckdh; a client that leaves FBillNo to the coding rule
    keeps the WDT number there and finds its bills by it (FieldKeys, FilterString, OrderString)."""
    sdk = sdk_for(server.url)
    models = [bill(None, F_ora_Text_ckdh=f"CK2024120400{n}") for n in range(1, 6)]
    result = json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": models}))["Result"]
    assert [s["Number"] for s in result["ResponseStatus"]["SuccessEntitys"]] == [
        f"XSCKD0000000{n}" for n in range(1, 6)
    ]
    found = query(
        sdk,
        "SAL_OUTSTOCK",
        "F_ora_Text_ckdh,FID,FBillNo",
        "F_ora_Text_ckdh in ('CK20241204002', 'ck20241204004 ', 'CK-NONE')",
        OrderString="F_ora_Text_ckdh DESC",
    )
    assert found == [["CK20241204004", 100004, "XSCKD00000004"], ["CK20241204002", 100002, "XSCKD00000002"]]
    either = "F_ora_Text_ckdh = 'CK20241204001' OR (F_ora_Text_ckdh = 'CK20241204005' AND FRealQty > 1)"
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", either) == [["XSCKD00000001"], ["XSCKD00000005"]]
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "F_ora_Text_ckdh like '%3'") == [["XSCKD00000003"]]
    op(sdk, "Delete", form="SAL_OUTSTOCK", Numbers=["XSCKD00000002"])
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "F_ora_Text_ckdh = 'CK20241204002'") == []
    # a value that is not text is found by the same filter (SQL Server converts it)
    assert saved(json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill(None, F_ora_Text_ckdh=777)]}))["Result"])
    assert query(sdk, "SAL_OUTSTOCK", "F_ora_Text_ckdh", "F_ora_Text_ckdh in ('777')") == [[777]]


def test_custom_fields_are_per_form(tmp_path: Path) -> None:
    custom = (
        "F_ora_Text_ysdh,F_ora_Text_ckdh,SAL_RETURNSTOCK:F_ora_Text_rkdh,sal_returnstock:FEntity.F_ora_Line,"
        "STK_InStock:FInStockFin.F_ora_Fin"
    )
    with _serve(tmp_path / "kd", custom_fields=custom) as srv:
        sdk = sdk_for(srv.url)
        model = ret(None, F_ora_Text_rkdh="RK2401150003", rows=[ret_row(F_ora_Line="L1")])
        assert saved(save(sdk, model))
        rows = query(sdk, FORM, "FBillNo,F_ora_Text_rkdh,F_ora_Line", "F_ora_Text_rkdh = 'RK2401150003'")
        assert rows == [["XSTHD000001", "RK2401150003", "L1"]]
        outstock = json.loads(sdk.BatchSave("SAL_OUTSTOCK", {"Model": [bill("CK-1", F_ora_Text_rkdh="x")]}))["Result"]
        assert errors(outstock) == [(0, "F_ora_Text_rkdh", UNKNOWN.format("F_ora_Text_rkdh"))]
        refused = json.loads(sdk.ExecuteBillQuery({"FormId": "SAL_OUTSTOCK", "FieldKeys": "F_ora_Line"}))
        assert refused[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 9
    for wrong in ("NO_FORM:F_x", "SAL_RETURNSTOCK:FInStockEntry.F_x", "STK_InStock:SubHeadEntity.F_x"):
        with pytest.raises(ValueError, match="custom field"):
            _serve(tmp_path / "bad", custom_fields=wrong)


def test_returns_survive_a_restart(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        assert saved(save(sdk, ret("RK-KEEP", rows=[ret_row(qty="2.5")]), IsAutoSubmitAndAudit=True))
        on_hand = level(srv, PLAIN_SKU)
    with _serve(tmp_path / "kd") as srv:
        sdk = sdk_for(srv.url)
        assert errors(save(sdk, ret("RK-KEEP"))) == [(0, "FBillNo", DUPLICATE.format("RK-KEEP"))]
        assert query(sdk, FORM, "FBillNo,FRealQty,FDocumentStatus") == [["RK-KEEP", Decimal("2.5"), "C"]]
        assert level(srv, PLAIN_SKU) == on_hand  # the audited return is counted again
        assert srv.emulator.read_bills(FORM)[0]["FEntity"][0]["FRealQty"] == Decimal("2.5")
        plain = post(
            srv.url,
            STUB + "DynamicFormService.View",
            {"formid": FORM, "data": {"Number": "RK-KEEP"}},
            logged_in(srv.url),
        )
        assert plain.json()["Result"]["Result"]["SAL_RETURNSTOCKENTRY"][0]["RealQty"] == 2.5
