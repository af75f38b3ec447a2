"""STK_InStock (采购入库单) in the Kingdee emulator, over loopback with the official SDK and plain HTTP
(kingdee-returnstock-instock.md §3, §5, §6), and the base data the new forms use."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from emulators.dataset import BILL_TYPES
from emulators.kingdee import KingdeeHTTPServer
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    BATCH_SKU,
    CATALOG,
    DUPLICATE,
    PLAIN_SKU,
    QUERY,
    ROW,
    SHOP,
    UNKNOWN_SKU,
    WAREHOUSE,
    _serve,
    errors,
    logged_in,
    must_input,
    post,
    query,
    saved,
    sdk_for,
)
from tests.emulators.test_kingdee_returnstock import level, op, save

FORM = "STK_InStock"
SUPPLIER = CATALOG.suppliers[0].provider_no
OTHER_WAREHOUSE = CATALOG.warehouses[1].warehouse_no
UNKNOWN = "元数据中标识为{}的字段不存在"


@pytest.fixture()
def server(tmp_path: Path) -> Any:
    with _serve(tmp_path / "kingdee") as srv:
        yield srv


@pytest.fixture()
def sdk(server: KingdeeHTTPServer) -> K3CloudApiSdk:
    return sdk_for(server.url)


def receipt(
    number: str | None = "CR2401150007", *, rows: list[dict[str, Any]] | None = None, **head: Any
) -> dict[str, Any]:
    """A purchase receipt shaped like the spec's canonical request (§3.5)."""
    model: dict[str, Any] = {
        "FID": 0,
        "FBillTypeID": {"FNUMBER": "RKD01_SYS"},
        "FBusinessType": "CG",
        "FDate": "2024-01-15",
        "FStockOrgId": {"FNumber": WAREHOUSE},
        "FPurchaseOrgId": {"FNumber": WAREHOUSE},
        "FSupplierId": {"FNumber": SUPPLIER},
        "FOwnerTypeIdHead": "BD_OwnerOrg",
        "FOwnerIdHead": {"FNumber": WAREHOUSE},
        "FDeliveryBill": "DN2401150001",
        "FInStockFin": {
            "FSettleOrgId": {"FNumber": WAREHOUSE},
            "FSettleCurrId": {"FNumber": "PRE001"},
            "FIsIncludedTax": True,
            "FPriceTimePoint": "1",
            "FLocalCurrId": {"FNumber": "PRE001"},
            "FExchangeTypeId": {"FNumber": "HLTX01_SYS"},
            "FExchangeRate": 1,
        },
        "FInStockEntry": rows if rows is not None else [line()],
    }
    if number is not None:
        model["FBillNo"] = number
    model.update(head)
    return model


def line(material: str = PLAIN_SKU, qty: Any = 100, price: Any = 21.5, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "FEntryID": 0,
        "FRowType": "Standard",
        "FMaterialId": {"FNumber": material},
        "FUnitID": {"FNumber": "Pcs"},
        "FRealQty": qty,
        "FTaxPrice": price,
        "FEntryTaxRate": 13,
        "FGiveAway": False,
        "FStockId": {"FNumber": WAREHOUSE},
        "FStockStatusId": {"FNumber": "KCZT01_SYS"},
        "FOwnerTypeId": "BD_OwnerOrg",
        "FOwnerId": {"FNumber": WAREHOUSE},
        "FLot": {"FNumber": "20250822"},
        "FPOOrderNo": "CG2401100003",
        "FNote": "WDT PO CG2401100003",
    }
    entry.update(extra)
    return entry


# ------------------------------------------------------------------------------------ official SDK
def test_official_sdk_saves_queries_views_and_deletes_a_receipt(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", verify_api_signature=True) as srv:
        sdk = sdk_for(srv.url)
        result = save(sdk, receipt(), form=FORM, NeedReturnFields=["FBillNo", "FInStockEntry.FEntryID"])
        assert result["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100001, "Number": "CR2401150007", "DIndex": 0}]
        assert result["NeedReturnData"] == [{"FBillNo": "CR2401150007", "FInStockEntry": [{"FEntryID": 100001}]}]
        keys = (
            "FID,FBillNo,FDocumentStatus,FBusinessType,FSupplierId.FNumber,FSupplierId.FName,FPurchaseOrgId.FNumber,"
            "FInStockEntry_FEntryId,FMaterialId.FNumber,FRealQty,FTaxPrice,FAllAmount,FStockId.FNumber"
        )
        rows = query(sdk, FORM, keys, "FBillNo = 'CR2401150007'")
        assert rows == [
            [
                100001,
                "CR2401150007",
                "A",
                "CG",
                SUPPLIER,
                CATALOG.suppliers[0].provider_name,
                WAREHOUSE,
                100001,
                PLAIN_SKU,
                100,
                Decimal("21.5"),
                2150,
                WAREHOUSE,
            ]
        ]
        view = json.loads(sdk.View(FORM, {"Number": "CR2401150007"}))["Result"]
        doc = view["Result"]
        assert (doc["BillNo"], doc["SupplierId"]["Number"], doc["DeliveryBill"]) == (
            "CR2401150007",
            SUPPLIER,
            "DN2401150001",
        )
        assert doc["InStockFin"][0]["SettleCurrId"]["Number"] == "PRE001"
        assert doc["InStockFin"][0]["FPriceTimePoint"] == "1"  # kept as sent
        entry = doc["InStockEntry"][0]
        assert (entry["Id"], entry["MaterialId"]["Number"], entry["RealQty"], entry["GiveAway"]) == (
            100001,
            PLAIN_SKU,
            100,
            False,
        )
        assert op(sdk, "Submit", form=FORM, Numbers=["CR2401150007"])["IsSuccess"] is True
        refused = op(sdk, "Delete", form=FORM, Ids="100001")
        assert refused["IsSuccess"] is True  # 审核中 (B) may still be deleted
        assert query(sdk, FORM, "FBillNo") == []
        gone = json.loads(sdk.View(FORM, {"Id": "100001"}))["Result"]["ResponseStatus"]
        assert gone["Errors"][0]["Message"] == "内码为“100001”的采购入库单不存在，或者已被删除。"


def test_audit_receives_stock_and_unaudit_takes_it_back(server: KingdeeHTTPServer) -> None:
    sdk = sdk_for(server.url)
    before = level(server, BATCH_SKU)
    assert saved(save(sdk, receipt("CR-1", rows=[line(BATCH_SKU, qty=40, FLot={"FNumber": "L1"})]), form=FORM))
    assert op(sdk, "Submit", form=FORM, Numbers=["CR-1"])["IsSuccess"] is True
    audited = op(sdk, "Audit", form=FORM, Numbers=["CR-1"])
    assert audited["SuccessMessages"][0]["Message"] == "单据编号为“CR-1”的采购入库单，审核成功！"
    assert level(server, BATCH_SKU) == before + 40
    again = op(sdk, "Audit", form=FORM, Numbers=["CR-1"])
    assert again["Errors"][0]["Message"] == "单据编号为“CR-1”的采购入库单，单据已经审核！"
    assert op(sdk, "UnAudit", form=FORM, Numbers=["CR-1"])["IsSuccess"] is True
    assert level(server, BATCH_SKU) == before
    rows = query(sdk, FORM, "FDocumentStatus,FLot.FNumber,FApproveDate", "FBillNo = 'CR-1'")
    assert rows == [["D", "L1", None]]


# ---------------------------------------------------------------------------------- validation
def test_required_fields_have_the_spec_s_messages(sdk: K3CloudApiSdk) -> None:
    assert [(f, m) for _, f, m in errors(save(sdk, {}, form=FORM))] == [
        ("FStockOrgId", "字段“收料组织”是必填项"),  # FBillTypeID and FDate are defaulted
        ("FPurchaseOrgId", "字段“采购组织”是必填项"),
        ("FSupplierId", "字段“供应商”是必填项"),
        ("FOwnerIdHead", "字段“货主”是必填项"),
        ("FSettleCurrId", "字段“结算币别”是必填项"),
        ("FSettleOrgId", "字段“结算组织”是必填项"),
        ("FInStockEntry", "单据体实体【明细信息】至少需要录入一行分录"),
    ]
    no_stock = line()
    del no_stock["FStockId"]
    result = save(
        sdk,
        receipt("CR-R1", FSupplierId={"FNumber": "VEN999"}),
        receipt("CR-R2", rows=[line(), no_stock]),
        receipt("CR-R3", rows=[line(UNKNOWN_SKU), line(qty=0), line(qty="-5")]),
        receipt("CR-R4", FBillTypeID={"FNumber": "XSTHD01_SYS"}),  # a return's bill type
        receipt("CR-R5", rows=[line(FStockId={"FNumber": OTHER_WAREHOUSE})]),  # a stock of another organisation
        receipt("CR-OK"),
        form=FORM,
    )
    assert result["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100001, "Number": "CR-OK", "DIndex": 5}]
    assert errors(result) == [
        (3, "FBillTypeID", "字段“单据类型”是必填项"),
        (0, "FSupplierId", "字段“供应商”是必填项"),
        (2, "FMaterialId", must_input(1, "物料编码")),
        (2, "FRealQty", must_input(2, "实收数量")),
        (1, "FStockId", must_input(2, "仓库")),
        (4, "FStockId", must_input(1, "仓库")),
        (2, "FRealQty", f"{ROW.format(3)}【实收数量】必须大于0"),  # invented text
    ]


def test_defaults_gifts_and_the_ground_truth(server: KingdeeHTTPServer) -> None:
    sdk = sdk_for(server.url)
    model = receipt(None, rows=[line(qty="3", price="9.99"), line(qty=1, price="30", FGiveAway="true")])
    fin = model["FInStockFin"]
    del fin["FSettleOrgId"], fin["FLocalCurrId"], model["FOwnerIdHead"], model["FBillTypeID"], model["FBusinessType"]
    for row in model["FInStockEntry"]:
        del row["FUnitID"], row["FStockStatusId"], row["FOwnerId"]
    result = save(sdk, model, form=FORM)
    assert result["ResponseStatus"]["SuccessEntitys"] == [{"Id": 100001, "Number": "CGRK000001", "DIndex": 0}]
    (bill,) = server.emulator.read_bills(FORM)
    assert (bill["FBillNo"], bill["FBillTypeID"], bill["FBusinessType"], bill["FOwnerIdHead"]) == (
        "CGRK000001",
        "RKD01_SYS",
        "CG",
        WAREHOUSE,
    )
    assert (bill["FSupplyId"], bill["FSettleId"], bill["FChargeId"], bill["FDemandOrgId"]) == (
        SUPPLIER,
        SUPPLIER,
        SUPPLIER,
        WAREHOUSE,
    )
    fin = bill["FInStockFin"]
    d = Decimal
    assert (fin["FSettleOrgId"], fin["FLocalCurrId"], fin["FPriceTimePoint"]) == (WAREHOUSE, "PRE001", "1")
    assert (fin["FBillAllAmount"], fin["FBillTaxAmount"], fin["FBillAmount"]) == (d("29.97"), d("3.45"), d("26.52"))
    paid, gift = bill["FInStockEntry"]
    assert (paid["FUnitID"], paid["FPriceUnitID"], paid["FStockStatusId"], paid["FOwnerId"], paid["FKeeperId"]) == (
        "Pcs",
        "Pcs",
        "KCZT01_SYS",
        WAREHOUSE,
        WAREHOUSE,
    )
    assert (paid["FAllAmount"], paid["FPrice"], paid["FBaseUnitQty"], paid["FPOOrderNo"]) == (
        d("29.97"),
        d("8.840708"),
        3,
        "CG2401100003",
    )
    assert (gift["FGiveAway"], gift["FTaxPrice"], gift["FAllAmount"]) == (True, 0, 0)
    is_free = save(sdk, receipt("CR-FREE", rows=[line(FIsFree=True)]), form=FORM)  # SAL_OUTSTOCK's key
    assert errors(is_free) == [(0, "FIsFree", UNKNOWN.format("FIsFree"))]
    assert is_free["ResponseStatus"]["MsgCode"] == 9


def test_layout_aliases_links_and_duplicates(sdk: K3CloudApiSdk) -> None:
    aliased = receipt("CR-ALIAS")
    aliased["STK_InStock__FInStockEntry"] = aliased.pop("FInStockEntry")
    aliased["stk_instock__finstockfin"] = aliased.pop("FInStockFin")
    assert saved(save(sdk, aliased, form="stk_instock"))  # the form id in any case
    nested = receipt("CR-NESTED")
    nested["FInStockFin"]["FInStockEntry"] = nested.pop("FInStockEntry")
    sub_head = receipt("CR-SUB")
    sub_head["SubHeadEntity"] = sub_head.pop("FInStockFin")  # SAL_OUTSTOCK's sub-head key
    po_link = {
        "FInStockEntry_Link_FRuleId": "PUR_PurchaseOrder-STK_InStock",
        "FInStockEntry_Link_FSTableName": "t_PUR_POOrderEntry",
        "FInStockEntry_Link_FSBillId": "100001",
        "FInStockEntry_Link_FSId": "100001",
    }
    linked = receipt("CR-LINK", rows=[line(FInStockEntry_Link=[po_link])])
    result = save(sdk, nested, sub_head, linked, receipt("CR-ALIAS"), form=FORM)
    assert result["ResponseStatus"]["MsgCode"] == 9 and result["ResponseStatus"]["SuccessEntitys"] == []
    assert errors(result) == [
        (0, "FInStockEntry", UNKNOWN.format("FInStockEntry")),
        (1, "SubHeadEntity", UNKNOWN.format("SubHeadEntity")),
        (
            2,
            "FInStockEntry_Link",
            f"{ROW.format(1)}关联关系的源单不存在：转换规则“PUR_PurchaseOrder-STK_InStock”，源单内码“100001”，源单分录内码“100001”。",
        ),
        (3, "FBillNo", DUPLICATE.format("CR-ALIAS")),
    ]
    assert query(sdk, FORM, "FBillNo") == [["CR-ALIAS"]]


def test_numbers_and_faults(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", lost_response_rate=1.0) as srv:
        http = logged_in(srv.url)
        body = {"formid": FORM, "data": {"Model": [receipt(None), receipt("")]}}
        with pytest.raises(requests.ConnectionError):
            post(srv.url, BATCH_SAVE, body, http)
        listing = {"data": {"FormId": FORM, "FieldKeys": "FBillNo", "OrderString": "FID"}}
        assert post(srv.url, QUERY, listing, http).json() == [["CGRK000001"], ["CGRK000002"]]
    with _serve(tmp_path / "nc", network_control_rate=1.0) as srv:
        sdk = sdk_for(srv.url)
        assert save(sdk, receipt(), form=FORM)["ResponseStatus"]["MsgCode"] == 13
        assert query(sdk, FORM, "FBillNo") == []
    with _serve(tmp_path / "kd") as srv:  # the sequence survives the restart
        sdk = sdk_for(srv.url)
        async_save = json.loads(sdk.BatchSaveQuery(FORM, {"Model": [receipt(None)]}))
        assert async_save["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"] == "CGRK000003"


# ------------------------------------------------------------------------------------ base data
def test_base_data_of_the_new_forms_is_queryable(sdk: K3CloudApiSdk) -> None:
    suppliers = query(sdk, "BD_Supplier", "FNumber,FName,FForbidStatus", "FForbidStatus = 'A'", OrderString="FNumber")
    numbers = sorted({s.provider_no for s in CATALOG.suppliers})
    assert sorted({r[0] for r in suppliers}) == numbers
    every_org = query(sdk, "BD_Supplier", "FUseOrgId.FNumber", f"FNumber = '{SUPPLIER}'")
    assert {r[0] for r in every_org} == {s.shop_no for s in CATALOG.shops} | {
        w.warehouse_no for w in CATALOG.warehouses
    }
    assert {r[0] for r in query(sdk, "BD_Supplier", "FCreateOrgId.FNumber,FMasterId")} == {WAREHOUSE}
    # what the client's base-data check asks (FNumber in (…) AND FForbidStatus = 'A')
    found = query(sdk, "BD_Supplier", "FNumber", f"FNumber in ('{SUPPLIER}', 'VEN999') AND (FForbidStatus = 'A')")
    assert {r[0] for r in found} == {SUPPLIER}
    types = query(
        sdk,
        "BOS_ASSISTANTDATA_DETAIL",
        "FNumber,FDataValue,FName,FId.FNumber,FForbidStatus",
        "FNumber in ('THLX01_SYS', 'THLX02_SYS', 'QT', 'PS')",
        OrderString="FId.FNumber,FNumber",
    )
    assert types == [
        ["THLX01_SYS", "退货", "退货", "THLX", "A"],
        ["THLX02_SYS", "退货补货", "退货补货", "THLX", "A"],
        ["PS", "破损", "破损", "THYY", "A"],
        ["QT", "其他", "其他", "THYY", "A"],
    ]
    assert query(sdk, "BOS_ASSISTANTDATA", "FNumber,FName", OrderString="FNumber") == [
        ["THLX", "退货类型"],
        ["THYY", "退货原因"],
    ]
    bill_types = query(sdk, "BOS_BillType", "FNumber,FName,FBillFormID", "FForbidStatus = 'A'")
    assert [r[0] for r in bill_types] == [n for n, _ in BILL_TYPES]
    by_form = {r[0]: r[2] for r in bill_types}
    assert (by_form["XSCKD01_SYS"], by_form["XSTHD01_SYS"], by_form["XSTHD06_SYS"], by_form["RKD01_SYS"]) == (
        "SAL_OUTSTOCK",
        "SAL_RETURNSTOCK",
        "SAL_RETURNSTOCK",
        "STK_InStock",
    )
    assert query(sdk, "BD_StockStatus", "FNumber", "FNumber = 'KCZT01_SYS'") == [["KCZT01_SYS"]]
    assert query(sdk, "BD_UNIT", "FNumber", "FNumber = 'Pcs'") == [["Pcs"]]
    # a supplier may own stock on a bill (owner type BD_Supplier)
    consigned = receipt("CR-VMI", rows=[line(FOwnerTypeId="BD_Supplier", FOwnerId={"FNumber": SUPPLIER})])
    assert saved(save(sdk, consigned, form=FORM))
    owner = query(sdk, FORM, "FOwnerTypeId,FOwnerId.FNumber,FOwnerId.FName", "FBillNo = 'CR-VMI'")
    assert owner == [["BD_Supplier", SUPPLIER, CATALOG.suppliers[0].provider_name]]
    assert SHOP in {r[0] for r in every_org}
