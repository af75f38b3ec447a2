"""对账 against the emulators: load the days with the DAG, then change Kingdee behind the pipeline's back
with the official SDK (delete a bill, change a bill's quantity, save a bill by hand; one order is held
for a material Kingdee lacks), and reconcile the day with the CLI.

Each change must appear once under its kind with the right values and reason, the totals must differ
by exactly those amounts, and the exit code must be 1; after the material is created, a re-push and the
edits undone, the day is clean and the exit code 0.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from k3cloud_webapi_sdk.main import K3CloudApiSdk

from tests.conftest import KINGDEE
from tests.e2e.test_dag_end_to_end import DAG_ID, WINDOW, _connections, _run

pytestmark = pytest.mark.e2e

DAY = "2026-11-03"  # its documents: one held for an unknown SKU (CK2026110300027), none quarantined
HELD = "CK2026110300027"


def _sdk(server) -> K3CloudApiSdk:
    sdk = K3CloudApiSdk(server.url)
    sdk.InitConfig(KINGDEE["acct_id"], KINGDEE["username"], KINGDEE["app_id"], KINGDEE["app_secret"], server.url, 2052)
    return sdk


def _ok(reply: str) -> dict:
    result = json.loads(reply)["Result"]
    assert result["ResponseStatus"]["IsSuccess"] is True, result
    return result


def _query(sdk: K3CloudApiSdk, keys: str, where: str) -> list[list]:
    reply = sdk.ExecuteBillQuery({"FormId": "SAL_OUTSTOCK", "FieldKeys": keys, "FilterString": where})
    return json.loads(reply)


def _reconcile(*flags: str) -> tuple[int, list[dict]]:
    from erpsync.cli import main

    out = io.StringIO()
    code = main(["reconcile", "sales_outstock", "--day", DAY, "--json", *flags], out=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, [json.loads(line) for line in lines]


def test_reconciliation_finds_each_change_once_and_a_repush_makes_the_day_clean(
    airflow_db, wdt_emulator, kingdee_emulator, dataset, tmp_path, monkeypatch
):
    from erpsync.dag_factory import build_dags

    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    _run(build_dags()[DAG_ID], WINDOW)  # red: the data set's bad orders
    code, [clean] = _reconcile()
    assert code == 1 and [m["wdt_no"] for m in clean["missing"]] == [HELD]  # only the held one, to begin with
    assert clean["missing"][0]["reason"] == "held" and "BD_MATERIAL" in clean["missing"][0]["detail"]
    assert not clean["extra"] and not clean["mismatched"] and not clean["deleted"]

    sdk = _sdk(kingdee_emulator)
    on_day = sorted(_query(sdk, "FID,FBillNo", f"FDate >= '{DAY}' AND FDate < '2026-11-04'"), key=lambda r: r[1])
    (deleted_id, deleted_no), (edited_id, edited_no) = on_day[0], on_day[1]
    deleted_lines = _query(sdk, "FRealQty,FAllAmount", f"FBillNo = '{deleted_no}'")
    _ok(sdk.Delete("SAL_OUTSTOCK", {"Ids": str(deleted_id)}))
    (entry_id, quantity, amount, price, material), *_ = _query(
        sdk, "FEntity_FEntryID,FRealQty,FAllAmount,FTaxPrice,FMaterialID.FNumber", f"FBillNo = '{edited_no}'"
    )
    quantity, amount, price = Decimal(str(quantity)), Decimal(str(amount)), Decimal(str(price))
    changed = quantity + 3
    _ok(
        sdk.Save(
            "SAL_OUTSTOCK",
            {
                "Model": {"FID": edited_id, "FEntity": [{"FEntryID": entry_id, "FRealQty": str(changed)}]},
                "NeedUpDateFields": ["FRealQty"],
                "IsDeleteEntry": "false",
            },
        )
    )
    (new_amount,) = _query(sdk, "FAllAmount", f"FEntity_FEntryID = {entry_id}")[0]
    # a bill a person saves by hand, for the same customer, organisations and stock as the edited one
    (org, customer, stock_org, stock), *_ = _query(
        sdk, "FSaleOrgId.FNumber,FCustomerID.FNumber,FStockOrgId.FNumber,FStockID.FNumber", f"FBillNo = '{edited_no}'"
    )
    hand = _ok(
        sdk.Save(
            "SAL_OUTSTOCK",
            {
                "Model": {
                    "FBillTypeID": {"FNUMBER": "XSCKD001"},
                    "FBillNo": "HAND-20261103",
                    "FDate": f"{DAY} 15:00:00",
                    "FSaleOrgId": {"FNumber": org},
                    "FCustomerID": {"FNumber": customer},
                    "FStockOrgId": {"FNumber": stock_org},
                    "SubHeadEntity": {"FSettleCurrID": {"FNumber": "PRE001"}, "FSettleOrgID": {"FNumber": org}},
                    "FEntity": [
                        {
                            "FMaterialID": {"FNumber": material},
                            "FStockID": {"FNumber": stock},
                            "FRealQty": "2",
                            "FTaxPrice": "10.005",
                        }
                    ],
                }
            },
        )
    )
    hand_id = hand["ResponseStatus"]["SuccessEntitys"][0]["Id"]

    code, [found] = _reconcile()
    assert code == 1
    assert [(m["wdt_no"], m["reason"]) for m in found["missing"]] == [(HELD, "held")]
    assert [(d["wdt_no"], d["kingdee_bill_no"]) for d in found["deleted"]] == [(deleted_no, deleted_no)]
    assert "created by window=" in found["deleted"][0]["detail"]
    assert [(e["kingdee_bill_no"], e["reason"]) for e in found["extra"]] == [("HAND-20261103", "no WDT document")]
    assert {(m["wdt_no"], m["field"], m["wdt"], m["kingdee"]) for m in found["mismatched"]} == {
        (edited_no, "quantity", str(quantity.normalize()), str(changed.normalize())),
        (edited_no, "amount", str(amount.normalize()), str(Decimal(str(new_amount)).normalize())),
    }
    assert Decimal(str(new_amount)) == (changed * price).quantize(Decimal("0.01"))  # Kingdee recomputed it

    # the totals differ by exactly those amounts: the held and deleted bills on WDT's side, the edit and
    # the hand-made bill on Kingdee's
    wdt, kingdee = found["totals"]["wdt"], found["totals"]["kingdee"]
    held_order = next(o for o in dataset.orders if o["order_no"] == HELD)
    held_amount = sum(
        (Decimal(d["goods_count"]) * Decimal(d["sell_price"])).quantize(Decimal("0.01"))
        for d in held_order["details_list"]
    )
    held_quantity = sum(Decimal(d["goods_count"]) for d in held_order["details_list"])
    deleted_quantity = sum(Decimal(str(q)) for q, _ in deleted_lines)
    deleted_amount = sum(Decimal(str(a)) for _, a in deleted_lines)
    hand_amount = (Decimal(2) * Decimal("10.005")).quantize(Decimal("0.01"))
    assert Decimal(wdt["amount"]) - Decimal(kingdee["amount"]) == (
        held_amount + deleted_amount - (Decimal(str(new_amount)) - amount) - hand_amount
    )
    assert Decimal(wdt["quantity"]) - Decimal(kingdee["quantity"]) == (held_quantity + deleted_quantity - 3 - 2)
    assert wdt["documents"] - kingdee["bills"] == 2 - 1  # held and deleted, against the hand-made one

    # a person creates the missing material, re-pushes, and undoes the edits
    _create_material(sdk, held_order)
    code, [after] = _reconcile("--repush")
    assert {d["wdt_no"] for d in after["missing"] + after["deleted"]} == set()
    _ok(
        sdk.Save(
            "SAL_OUTSTOCK",
            {
                "Model": {"FID": edited_id, "FEntity": [{"FEntryID": entry_id, "FRealQty": str(quantity)}]},
                "NeedUpDateFields": ["FRealQty"],
                "IsDeleteEntry": "false",
            },
        )
    )
    _ok(sdk.Delete("SAL_OUTSTOCK", {"Ids": str(hand_id)}))
    code, [restored] = _reconcile()
    assert code == 0, restored
    assert restored["totals"]["wdt"]["amount"] == restored["totals"]["kingdee"]["amount"]
    numbers = [r[0] for r in _query(sdk, "FBillNo", f"FDate >= '{DAY}' AND FDate < '2026-11-04'")]
    assert len(numbers) == len(set(numbers))  # the re-push made no second bill


def _create_material(sdk: K3CloudApiSdk, order: dict) -> None:
    for line in order["details_list"]:
        known = json.loads(
            sdk.ExecuteBillQuery(
                {"FormId": "BD_MATERIAL", "FieldKeys": "FNumber", "FilterString": f"FNumber = '{line['spec_no']}'"}
            )
        )
        if known:
            continue
        org = {"FNumber": order["warehouse_no"]}
        material = {
            "FMATERIALID": 0,
            "FNumber": line["spec_no"],
            "FName": "新物料",
            "FCreateOrgId": org,
            "FUseOrgId": org,
        }
        _ok(sdk.Save("BD_MATERIAL", {"Model": material}))
