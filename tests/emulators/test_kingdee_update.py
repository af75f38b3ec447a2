"""Updates through Save/BatchSave (a Model with FID other than 0) in the Kingdee emulator, driven over
loopback with the official SDK: NeedUpDateFields, IsDeleteEntry, FEntryID, recomputed amounts, refusals,
every bill form, persistence (kingdee-webapi.md §3.1, ``emulators/kingdee/updates.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from k3cloud_webapi_sdk.main import K3CloudApiSdk

import emulators.kingdee.server as kd_server
from emulators.kingdee import KingdeeHTTPServer
from tests.emulators.test_kingdee_emulator import (
    BATCH_SKU,
    CATALOG,
    DUPLICATE,
    ROW,
    SHOP,
    _serve,
    batch_save,
    bill,
    errors,
    query,
    row,
    saved,
    sdk_for,
)
from tests.emulators.test_kingdee_instock import line, receipt
from tests.emulators.test_kingdee_returnstock import _link, ret, ret_row

OTHER_SHOP = CATALOG.shops[1].shop_no
CENT = Decimal("0.01")
ROWS = "FEntity_FEntryID,FEntity_FSeq,FRealQty,FTaxPrice,FAllAmount,FAmount,FEntryTaxAmount"
TOTALS = "FBillAmount,FBillTaxAmount,FBillAllAmount"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[KingdeeHTTPServer]:
    with _serve(tmp_path / "kingdee") as srv:
        yield srv


@pytest.fixture()
def sdk(server: KingdeeHTTPServer) -> K3CloudApiSdk:
    return sdk_for(server.url)


def save(sdk: K3CloudApiSdk, model: dict[str, Any], form: str = "SAL_OUTSTOCK", **options: Any) -> dict[str, Any]:
    """One Save call the way finance staff make it with the SDK."""
    return json.loads(sdk.Save(form, {"Model": model, **options}))["Result"]


def op(sdk: K3CloudApiSdk, name: str, form: str = "SAL_OUTSTOCK", **data: Any) -> dict[str, Any]:
    return json.loads(getattr(sdk, name)(form, data))["Result"]


def amounts(qty: Decimal, tax_price: Decimal, rate: Decimal = Decimal(13)) -> tuple[Decimal, Decimal, Decimal]:
    """(FAllAmount, FAmount, FEntryTaxAmount) of a tax-inclusive row, as Kingdee rounds them."""
    r = rate / 100
    all_amount = (qty * tax_price).quantize(CENT)
    tax = (all_amount * r / (1 + r)).quantize(CENT)
    return all_amount, all_amount - tax, tax


def two_row_bill(sdk: K3CloudApiSdk, number: str = "CK-UPD") -> tuple[int, list[int]]:
    result = batch_save(sdk, bill(number, rows=[row(qty="2", price="19.9"), row(BATCH_SKU, qty="3", price="10.005")]))
    assert saved(result), result
    fid = result["ResponseStatus"]["SuccessEntitys"][0]["Id"]
    ids = [r[0] for r in query(sdk, "SAL_OUTSTOCK", "FEntity_FEntryID", f"FBillNo = '{number}'")]
    return fid, ids


def rows_of(sdk: K3CloudApiSdk, number: str, keys: str = ROWS) -> list[list[Any]]:
    return query(sdk, "SAL_OUTSTOCK", keys, f"FBillNo = '{number}'", OrderString="FEntity_FSeq")


def failure(result: dict[str, Any]) -> tuple[int, list[tuple[int, str | None, str]]]:
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["SuccessEntitys"] == []
    return status["MsgCode"], errors(result)


# --------------------------------------------------------------------------------- the SDK's update
def test_quantity_update_recomputes_amounts_and_keeps_the_rest(
    sdk: K3CloudApiSdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    fid, (first, second) = two_row_bill(sdk)
    before_head = query(sdk, "SAL_OUTSTOCK", "FCreateDate,FModifyDate", "FBillNo = 'CK-UPD'")[0]
    keep = "FCustomerID.FNumber,F_ora_Text_ysdh,FDate,FDocumentStatus,FMaterialID.FNumber,FLot.FNumber,FStockID.FNumber"
    kept_before = rows_of(sdk, "CK-UPD", keep)
    monkeypatch.setattr(kd_server, "_now", lambda: "2031-05-06T07:08:09")

    result = save(
        sdk,
        {"FID": fid, "FEntity": [{"FEntryID": first, "FRealQty": "5"}]},
        NeedUpDateFields=["FRealQty"],
        IsDeleteEntry="false",
    )

    assert result["ResponseStatus"]["IsSuccess"] is True, result
    assert result["ResponseStatus"]["SuccessEntitys"] == [{"Id": fid, "Number": "CK-UPD", "DIndex": 0}]
    assert (result["Id"], result["Number"]) == (fid, "CK-UPD")
    row1 = amounts(Decimal(5), Decimal("19.9"))
    row2 = amounts(Decimal(3), Decimal("10.005"))
    assert row1 == (Decimal("99.50"), Decimal("88.05"), Decimal("11.45"))  # to the cent
    assert rows_of(sdk, "CK-UPD") == [
        [first, 1, 5, Decimal("19.9"), *row1],
        [second, 2, 3, Decimal("10.005"), *row2],  # the row not sent is untouched
    ]
    totals = query(sdk, "SAL_OUTSTOCK", TOTALS, "FBillNo = 'CK-UPD'")[0]
    assert totals == [row1[1] + row2[1], row1[2] + row2[2], row1[0] + row2[0]]
    assert rows_of(sdk, "CK-UPD", keep) == kept_before  # header, lot and stock kept
    created, modified = query(sdk, "SAL_OUTSTOCK", "FCreateDate,FModifyDate", "FBillNo = 'CK-UPD'")[0]
    assert (created, modified) == (before_head[0], "2031-05-06T07:08:09")
    # the query of the reconciliation, by row id, and View show the new values
    assert query(sdk, "SAL_OUTSTOCK", "FRealQty,FAllAmount", f"FEntity_FEntryID = {first}") == [[5, row1[0]]]
    view = op(sdk, "View", Id=str(fid))["Result"]
    entries = view["SAL_OUTSTOCKENTRY"]
    assert [(e["Id"], e["RealQty"], Decimal(str(e["AllAmount"]))) for e in entries] == [
        (first, 5, row1[0]),
        (second, 3, row2[0]),
    ]
    assert view["ModifyDate"].startswith("2031-05-06")


def test_header_fields_update_and_need_update_fields_filters(sdk: K3CloudApiSdk) -> None:
    fid, ids = two_row_bill(sdk)
    # NeedUpDateFields names FDate only: the other keys sent are ignored
    result = save(
        sdk,
        {"FID": fid, "FDate": "2025-01-02 08:00:00", "F_ora_Text_ysdh": "ignored", "FEntity": []},
        NeedUpDateFields="FDate",
    )
    assert saved(result), result
    keys = "FDate,F_ora_Text_ysdh,FSaleOrgId.FNumber,FCustomerID.FNumber,FReceiverID.FNumber"
    assert query(sdk, "SAL_OUTSTOCK", keys, f"FID = {fid}")[0] == [
        "2025-01-02T00:00:00",
        "TB-778899",
        SHOP,
        SHOP,
        SHOP,
    ]
    assert len(rows_of(sdk, "CK-UPD")) == 2  # rows not named by NeedUpDateFields: kept despite IsDeleteEntry
    # without NeedUpDateFields every key sent is updated: a customer of another sales organisation
    result = save(
        sdk,
        {
            "FID": fid,
            "FSaleOrgId": {"FNumber": OTHER_SHOP},
            "FCustomerID": {"FNumber": OTHER_SHOP},
            "SubHeadEntity": {"FSettleOrgID": {"FNumber": OTHER_SHOP}},
            "F_ora_Text_ysdh": "TB-EDITED",
        },
    )
    assert saved(result), result
    keys += ",FSettleOrgID.FNumber,FSettleCurrID.FNumber"
    assert query(sdk, "SAL_OUTSTOCK", keys, f"FID = {fid}")[0] == [
        "2025-01-02T00:00:00",
        "TB-EDITED",
        OTHER_SHOP,
        OTHER_SHOP,
        SHOP,  # a default derived on create is not re-derived
        OTHER_SHOP,
        "PRE001",  # the sub-head field not sent is kept
    ]
    assert [r[0] for r in rows_of(sdk, "CK-UPD")] == ids  # no FEntity sent: the rows stay
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "F_ora_Text_ysdh = 'TB-EDITED'") == [["CK-UPD"]]  # re-indexed
    assert query(sdk, "SAL_OUTSTOCK", "FBillNo", "F_ora_Text_ysdh = 'TB-778899'") == []
    # the merged bill is checked: an unknown customer empties a required field
    result = save(sdk, {"FID": fid, "FCustomerID": {"FNumber": "NO-SUCH-CUSTOMER"}})
    assert failure(result) == (11, [(0, "FCustomerID", "字段“客户”是必填项")])


def test_is_delete_entry_and_new_rows(sdk: K3CloudApiSdk) -> None:
    fid, (first, second) = two_row_bill(sdk)
    # IsDeleteEntry defaults to true: the row not sent is deleted; a row without FEntryID is new
    result = save(sdk, {"FID": fid, "FEntity": [{"FEntryID": first, "FRealQty": 4}, row(qty="1", price="7.77")]})
    assert saved(result), result
    rows = rows_of(sdk, "CK-UPD")
    assert [(r[0], r[1], r[2]) for r in rows] == [(first, 1, 4), (rows[1][0], 2, 1)]
    new_id = rows[1][0]
    assert new_id > second  # a new FEntryID, never a reused one
    assert rows[1][4:] == list(amounts(Decimal(1), Decimal("7.77")))
    # IsDeleteEntry false: stored rows not sent stay, FEntryID 0 adds a row after them
    result = save(
        sdk,
        {"FID": fid, "FENTITY": [{"FENTRYID": 0, **row(qty="2", price="1")}, {"fentryid": str(first), "FTaxPrice": 2}]},
        IsDeleteEntry=False,
    )
    assert saved(result), result
    rows = rows_of(sdk, "CK-UPD")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (first, 1, 4, 2),
        (new_id, 2, 1, Decimal("7.77")),
        (rows[2][0], 3, 2, 1),
    ]
    assert rows[0][4:] == list(amounts(Decimal(4), Decimal(2)))
    # deleting every row is refused like a bill without rows
    result = save(sdk, {"FID": fid, "FEntity": []})
    assert failure(result) == (11, [(0, "FEntity", "单据体实体【明细信息】至少需要录入一行分录")])
    assert len(rows_of(sdk, "CK-UPD")) == 3


def test_need_update_fields_of_a_row_with_the_default_is_delete_entry(sdk: K3CloudApiSdk) -> None:
    fid, (first, _) = two_row_bill(sdk)
    # the SDK call of the brief as finance staff make it: NeedUpDateFields names a row field, IsDeleteEntry
    # is left at its documented default (true), so the stored row the Model does not name is deleted
    result = json.loads(
        sdk.Save(
            "SAL_OUTSTOCK",
            {"Model": {"FID": fid, "FEntity": [{"FEntryID": first, "FRealQty": 5}]}, "NeedUpDateFields": ["FRealQty"]},
        )
    )["Result"]
    assert saved(result), result
    row1 = amounts(Decimal(5), Decimal("19.9"))
    assert rows_of(sdk, "CK-UPD") == [[first, 1, 5, Decimal("19.9"), *row1]]
    assert query(sdk, "SAL_OUTSTOCK", TOTALS, f"FID = {fid}")[0] == [row1[1], row1[2], row1[0]]


def test_refusals(sdk: K3CloudApiSdk) -> None:
    fid, (first, _) = two_row_bill(sdk)
    other_fid, (other_row, _) = two_row_bill(sdk, "CK-OTHER")
    assert failure(save(sdk, {"FID": 999999, "FDate": "2025-01-01"})) == (
        11,
        [(0, "FID", "FID为999999的单据不存在，或者已被删除。")],
    )
    # a row of another bill is no row of this one; the same row twice
    result = save(sdk, {"FID": fid, "FEntity": [{"FEntryID": other_row, "FRealQty": 1}]})
    assert failure(result) == (
        11,
        [(0, "FEntryID", f"{ROW.format(1)}FEntryID为{other_row}的分录不存在，或者已被删除。")],
    )
    result = save(sdk, {"FID": fid, "FEntity": [{"FEntryID": first, "FRealQty": 1}, {"FEntryID": first}]})
    assert failure(result) == (11, [(0, "FEntryID", f"{ROW.format(2)}FEntryID为{first}的分录在数据包中重复出现。")])
    # NeedUpDateFields names a field the form does not have
    result = save(sdk, {"FID": fid, "FDate": "2025-01-01"}, NeedUpDateFields=["FDate", "FNoSuchField"])
    assert failure(result) == (9, [(0, "FNoSuchField", "元数据中标识为FNoSuchField的字段不存在")])
    # FBillNo must stay unique; keeping its own number is no conflict; a free number frees the old one
    result = save(sdk, {"FID": fid, "FBillNo": "ck-other "})
    assert failure(result) == (11, [(0, "FBillNo", DUPLICATE.format("ck-other "))])
    assert saved(save(sdk, {"FID": fid, "FBillNo": "CK-UPD", "FDate": "2025-02-03"}))
    assert saved(save(sdk, {"FID": fid, "FBillNo": "CK-RENAMED"}))
    assert query(sdk, "SAL_OUTSTOCK", "FID", "FBillNo = 'CK-RENAMED'") == [[fid]]
    assert query(sdk, "SAL_OUTSTOCK", "FID", "FBillNo = 'CK-UPD'") == []
    assert saved(batch_save(sdk, bill("CK-UPD")))  # the old number is free again
    # submitted and audited bills are locked
    assert op(sdk, "Submit", Ids=str(other_fid))["ResponseStatus"]["IsSuccess"] is True
    result = save(sdk, {"FID": other_fid, "FEntity": [{"FEntryID": other_row, "FRealQty": 1}]}, IsDeleteEntry=False)
    assert failure(result) == (11, [(0, None, "单据编号为“CK-OTHER”的销售出库单，单据已经提交，不允许修改！")])
    assert op(sdk, "Audit", Ids=str(other_fid), InterationFlags="STK_InvCheckResult")["ResponseStatus"]["IsSuccess"]
    result = save(sdk, {"FID": other_fid, "FEntity": [{"FEntryID": other_row, "FRealQty": 1}]}, IsDeleteEntry=False)
    assert failure(result) == (11, [(0, None, "单据编号为“CK-OTHER”的销售出库单，单据已经审核，不允许修改！")])
    assert rows_of(sdk, "CK-OTHER", "FRealQty") == [[2], [3]]
    # once unaudited (D) it can be edited again, and keeps its status
    assert op(sdk, "UnAudit", Ids=str(other_fid))["ResponseStatus"]["IsSuccess"] is True
    result = save(sdk, {"FID": other_fid, "FEntity": [{"FEntryID": other_row, "FRealQty": 1}]}, IsDeleteEntry=False)
    assert saved(result), result
    assert query(sdk, "SAL_OUTSTOCK", "FDocumentStatus,FRealQty", "FBillNo = 'CK-OTHER'")[0] == ["D", 1]


def test_batch_of_updates_and_creates_succeeds_per_bill(sdk: K3CloudApiSdk) -> None:
    fid, (first, _) = two_row_bill(sdk)
    result = batch_save(
        sdk,
        {"FID": fid, "FEntity": [{"FEntryID": first, "FRealQty": "6"}]},
        bill("CK-NEW"),
        {"FID": fid, "FDate": "2025-01-01"},
        {"FID": 424242},
        NeedUpDateFields=["FRealQty", "FEntity", "FDate"],
        IsDeleteEntry="false",
    )
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False
    assert [(s["Number"], s["DIndex"]) for s in status["SuccessEntitys"]] == [("CK-UPD", 0), ("CK-NEW", 1)]
    assert errors(result) == [
        (2, "FID", f"FID为{fid}的单据在本次保存的数据包中重复出现。"),
        (3, "FID", "FID为424242的单据不存在，或者已被删除。"),
    ]
    assert rows_of(sdk, "CK-UPD", "FRealQty,FAllAmount")[0] == [6, amounts(Decimal(6), Decimal("19.9"))[0]]
    assert query(sdk, "SAL_OUTSTOCK", "FDate", "FBillNo = 'CK-UPD'")[0] == ["2024-12-04T00:00:00"]


# ------------------------------------------------------------------------------------- other forms
def test_updates_on_returns_with_links_and_on_receipts(sdk: K3CloudApiSdk) -> None:
    source_fid, (source_row, _) = two_row_bill(sdk, "CK-SRC")  # row 1: 2 pieces
    linked = ret("RK-U1", rows=[ret_row(qty=2, FEntity_Link=[_link(source_fid, source_row)])])
    result = json.loads(sdk.BatchSave("SAL_RETURNSTOCK", {"Model": [linked]}))["Result"]
    assert saved(result), result
    ret_fid = result["ResponseStatus"]["SuccessEntitys"][0]["Id"]
    ((ret_row_id,),) = query(sdk, "SAL_RETURNSTOCK", "FEntity_FEntryId", "FBillNo = 'RK-U1'")
    # its own stored quantity is not counted against it: 2 of 2 stays possible, 3 is over
    update = {"FID": ret_fid, "FEntity": [{"FEntryId": ret_row_id, "FRealQty": 2, "FTaxPrice": "3.333"}]}
    assert saved(save(sdk, update, "SAL_RETURNSTOCK", IsDeleteEntry="false"))
    keys = "FRealQty,FAllAmount,FAmount,FEntryTaxAmount,FReturnType.FNumber"
    assert query(sdk, "SAL_RETURNSTOCK", keys, "FBillNo = 'RK-U1'") == [
        [2, *amounts(Decimal(2), Decimal("3.333")), "THLX01_SYS"]
    ]
    update["FEntity"] = [{"FEntryId": ret_row_id, "FRealQty": 3}]
    code, [(_, field, message)] = failure(save(sdk, update, "SAL_RETURNSTOCK", IsDeleteEntry="false"))
    assert (code, field) == (11, "FRealQty") and "实退数量3超过源单“CK-SRC”第【1】行的可退数量2。" in message

    result = json.loads(sdk.BatchSave("STK_InStock", {"Model": [receipt("CR-U1")]}))["Result"]
    assert saved(result), result
    in_fid = result["ResponseStatus"]["SuccessEntitys"][0]["Id"]
    ((in_row,),) = query(sdk, "STK_InStock", "FInStockEntry_FEntryID", "FBillNo = 'CR-U1'")
    update = {"FID": in_fid, "FInStockEntry": [{"FEntryID": in_row, "FRealQty": "7"}, line(qty=1, price="0.5")]}
    result = save(sdk, update, "STK_InStock", NeedUpDateFields=["FInStockEntry"])
    assert saved(result), result
    keys = "FInStockEntry_FEntryID,FRealQty,FAllAmount,FSupplierId.FNumber"
    rows = query(sdk, "STK_InStock", keys, "FBillNo = 'CR-U1'", OrderString="FInStockEntry_FSeq")
    supplier = CATALOG.suppliers[0].provider_no
    assert rows == [
        [in_row, 7, amounts(Decimal(7), Decimal("21.5"))[0], supplier],
        [rows[1][0], 1, Decimal("0.50"), supplier],
    ]
    total = query(sdk, "STK_InStock", "FBillAllAmount", "FBillNo = 'CR-U1'")[0][0]
    assert total == amounts(Decimal(7), Decimal("21.5"))[0] + Decimal("0.50")


# ------------------------------------------------------------------------------------- persistence
def test_updates_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "kd"
    with _serve(data_dir) as srv:
        sdk = sdk_for(srv.url)
        fid, (first, second) = two_row_bill(sdk)
        update = {"FID": fid, "FBillNo": "CK-MOVED", "FEntity": [{"FEntryID": second, "FRealQty": 9}, row()]}
        assert saved(save(sdk, update))
        before = rows_of(sdk, "CK-MOVED")
        truth = srv.emulator.read_bills("SAL_OUTSTOCK")
    assert [r[0] for r in before][0] == second and len(before) == 2
    assert truth[0]["FBillNo"] == "CK-MOVED" and [e["FRealQty"] for e in truth[0]["FEntity"]] == [9, 2]
    with _serve(data_dir) as srv:
        sdk = sdk_for(srv.url)
        assert rows_of(sdk, "CK-MOVED") == before
        assert query(sdk, "SAL_OUTSTOCK", "FID", "FBillNo = 'CK-UPD'") == []
        result = batch_save(sdk, bill("CK-UPD"), NeedReturnFields=["FEntity.FEntryID"])
        assert saved(result)  # the old number is free; ids continue after the update's new row
        assert result["ResponseStatus"]["SuccessEntitys"][0]["Id"] == fid + 1
        assert result["NeedReturnData"][0]["FEntity"][0]["FEntryID"] > before[1][0]
