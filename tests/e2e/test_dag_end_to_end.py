"""The whole DAG, run in one process with ``dag.test()``, against both emulators over loopback.

Checks the promise of the project: every valid completed stock-out of the window becomes exactly one
Kingdee bill carrying the scheme's mapped values, bad orders are quarantined or held back with their
reason (and the run ends red, as ``on_problem: fail`` asks), and a rerun adds nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import KINGDEE, REPO, WDT, connect_emulators

pytestmark = pytest.mark.e2e

DAG_ID = "wdt_kingdee_sales_outstock"
# The data set's orders ship on 2026-11-01..03 and complete up to two days later; the scheme reads on
# last-modified time (is_by_modified), so this window holds every completion.
WINDOW = {"window_start": "2026-11-01T00:00:00", "window_end": "2026-11-06T00:00:00"}


def _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator, **kingdee_extra):
    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", (tmp_path / "staging").as_uri())
    connect_emulators(monkeypatch, wdt_emulator.url, kingdee_emulator.url, **kingdee_extra)


@pytest.fixture
def dag(airflow_db, wdt_emulator, kingdee_emulator, tmp_path, monkeypatch):
    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    from erpsync.dag_factory import build_dags

    return build_dags()[DAG_ID]


def _kingdee(server):
    from erpsync.kingdee.client import K3CloudClient, K3CloudConfig

    return K3CloudClient(K3CloudConfig(server_url=server.url, **KINGDEE))


def _run(dag, conf, state="failed"):
    """Run the DAG for one window. The data set holds bad orders on purpose, so a window ends red
    (``on_problem: fail``) after loading everything else, unless a test fixes them first."""
    run = dag.test(run_conf=conf)
    assert run.state == state, f"DAG run ended {run.state}"
    tis = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert {k: v for k, v in tis.items() if k != "load"} == {
        "extract": "success",
        "validate": "success",
        "transform": "success",
        "prune_staging": "success",
    }
    assert tis["load"] == state
    return run


def _reports(tmp_path, dry_run=False):
    from airflow.sdk import ObjectStoragePath

    from erpsync.staging import RunFiles, read_parquet
    from erpsync.steps.load import read_report
    from erpsync.windows import Window, parse_datetime

    window = Window.of(parse_datetime(WINDOW["window_start"], "s"), parse_datetime(WINDOW["window_end"], "e"))
    files = RunFiles(ObjectStoragePath((tmp_path / "staging").as_uri()), DAG_ID, window, dry_run=dry_run)
    return files, read_parquet(files.quarantine) if files.quarantine.exists() else None, read_report(files)


def test_stockouts_become_exactly_one_bill_each(dag, dataset, kingdee_emulator, tmp_path):
    _run(dag, WINDOW)

    in_window = [
        o for o in dataset.orders if o["status"] == 110 and "2026-11-01" <= o["consign_time"][:10] <= "2026-11-03"
    ]
    valid = {o["order_no"]: o for o in in_window if o["order_no"] not in dataset.defects}
    zero_qty = {n for n, d in dataset.defects.items() if d == "zero_quantity"}
    unknown_sku = {n for n, d in dataset.defects.items() if d == "unknown_sku"}
    assert zero_qty and unknown_sku

    files, quarantine, report = _reports(tmp_path)
    assert not files.complete.exists()  # a red window satisfies no scheme that waits for it
    # bad quantities never reach Kingdee; they are listed with the rule and the value
    assert set(quarantine["order_no"]) == zero_qty
    assert set(quarantine["column"]) == {"goods_count"} and set(quarantine["value"]) == {"0.0000"}
    assert set(quarantine["check"]) == {"goods_count > 0"}
    # Kingdee refuses the SKU it does not know, and says which field of which row
    # a SKU Kingdee does not know is found before posting: the bill is held back, naming form and number
    held = report[report["outcome"] == "held"]
    assert set(held["bill_no"]) == unknown_sku
    assert all(f == "FMaterialID" for f in held["field"])
    assert all("BD_MATERIAL has no number 'NEW-SKU-999' (FMaterialID, FEntity row" in m for m in held["message"])
    # the report has every order of the window: the quarantined ones too, with their reason
    quarantined = report[report["outcome"] == "quarantined"]
    assert set(quarantined["order_no"]) == zero_qty and quarantined["bill_no"].isna().all()
    assert all("goods_count='0.0000' breaks 'goods_count > 0'" in m for m in quarantined["message"])
    assert set(report.loc[report["outcome"] == "created", "bill_no"]) == set(valid)
    assert (files.quality / "docs" / "index.html").exists()

    client = _kingdee(kingdee_emulator)
    keys = [
        "FBillNo",
        "FDate",
        "FBillTypeID.FNumber",
        "FCustomerID.FNumber",
        "FSaleOrgId.FNumber",
        "FSaleDeptID.FNumber",
        "FStockOrgId.FNumber",
        "F_ora_Text_ysdh",
        "F_ora_Text_ckdh",
        "FEntity_FEntryID",
        "FMaterialID.FNumber",
        "FRealQty",
        "FMustQty",
        "FTaxPrice",
        "FIsFree",
        "FStockID.FNumber",
        "FLot.FNumber",
        "FAllAmount",
    ]
    rows = client.execute_bill_query("SAL_OUTSTOCK", keys)
    bills: dict[str, list[dict]] = {}
    for row in rows:
        record = dict(zip(keys, row, strict=True))
        bills.setdefault(record["FBillNo"], []).append(record)
    assert set(bills) == set(valid)  # exactly one bill per valid order, nothing else

    for bill_no, entries in bills.items():
        order = valid[bill_no]
        lines = sorted(order["details_list"], key=lambda line: line["rec_id"])
        head = entries[0]
        assert head["FDate"].replace("T", " ")[:10] == order["consign_time"][:10]
        assert head["FBillTypeID.FNumber"] == "XSCKD001"
        assert head["FCustomerID.FNumber"] == head["FSaleOrgId.FNumber"] == order["shop_no"]
        assert head["FSaleDeptID.FNumber"] == "BM000175"
        assert head["FStockOrgId.FNumber"] == order["warehouse_no"]
        assert head["F_ora_Text_ckdh"] == order["stockout_no"]
        assert head["F_ora_Text_ysdh"] == ",".join(dict.fromkeys(line["src_tid"] for line in lines if line["src_tid"]))
        assert len(entries) == len(lines)
        total = Decimal(0)
        for entry, line in zip(entries, lines, strict=True):
            assert entry["FMaterialID.FNumber"] == line["spec_no"]
            assert Decimal(str(entry["FRealQty"])) == Decimal(str(entry["FMustQty"])) == Decimal(line["goods_count"])
            assert Decimal(str(entry["FTaxPrice"])) == Decimal(line["sell_price"])
            assert entry["FIsFree"] is (Decimal(line["sell_price"]) == 0)
            assert entry["FStockID.FNumber"] == order["warehouse_no"]
            total += Decimal(str(entry["FAllAmount"]))
        # to the cent: Kingdee's amounts add up to WDT's goods total
        assert total == Decimal(order["goods_total_amount"]).quantize(Decimal("0.01"))


def test_a_rerun_and_an_overlapping_window_add_nothing(dag, kingdee_emulator, tmp_path):
    _run(dag, WINDOW)
    client = _kingdee(kingdee_emulator)
    before = sorted(client.execute_bill_query("SAL_OUTSTOCK", ["FID", "FBillNo"]))
    assert before

    _run(dag, WINDOW)
    _, _, report = _reports(tmp_path)
    assert set(report["outcome"]) == {"existing", "held", "quarantined"}
    # the overlapping window reads the same bad orders: known problems, reported by the first window,
    # so it is green and alerts nobody (one problem, one red window)
    _run(dag, {"window_start": "2026-11-02", "window_end": "2026-11-04"}, state="success")
    assert sorted(client.execute_bill_query("SAL_OUTSTOCK", ["FID", "FBillNo"])) == before


def test_the_cli_run_logs_outcomes_and_no_secret(dag, kingdee_emulator, monkeypatch):
    """What a user types: `airflow dags test … --conf`; its task logs name each order that did not
    reach Kingdee, and never a secret, though the login it logs carries the password."""
    conn = json.loads(os.environ["AIRFLOW_CONN_KINGDEE_DEFAULT"])
    conn["extra"]["auth"] = "password"
    monkeypatch.setenv("AIRFLOW_CONN_KINGDEE_DEFAULT", json.dumps(conn))
    airflow = Path(sys.executable).parent / "airflow"
    conf = json.dumps(WINDOW)
    done = subprocess.run(
        [str(airflow), "dags", "test", DAG_ID, "--conf", conf], capture_output=True, text=True, cwd=REPO
    )
    logs = done.stdout + done.stderr
    assert done.returncode != 0 and "DagRun failed" in logs, logs[-3000:]
    # the load task's summary lists every order that did not reach Kingdee, with its reason
    assert "orders did not reach Kingdee:" in logs
    assert (
        "held" in logs
        and "BD_MATERIAL has no number" in logs
        and "quarantined" in logs
        and "goods_count='0.0000'" in logs
    )
    assert "Quarantined order" in logs
    # the path that carries a secret did run: the login, whose request holds the password
    assert '"username": "erpsync", "password": "***"' in logs
    for secret in (WDT["app_secret"], KINGDEE["app_secret"]):
        assert secret not in logs
    assert len(_kingdee(kingdee_emulator).execute_bill_query("SAL_OUTSTOCK", ["FID"])) > 0


def test_on_problem_warn_gives_a_green_run_with_the_same_bills(
    airflow_db, wdt_emulator, kingdee_emulator, tmp_path, monkeypatch, edited_scheme
):
    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    from erpsync.dag_factory import build_dag

    scheme = edited_scheme(lambda d: d["settings"]["load"].update(on_problem="warn"))
    _run(build_dag(scheme), WINDOW, state="success")
    files, quarantine, report = _reports(tmp_path)
    assert len(quarantine) and (report["outcome"] == "held").any()
    # the window is complete for schemes that wait for this one (前置条件), problems counted
    from erpsync.outcomes import PROBLEMS

    assert json.loads(files.complete.read_text())["problems"] == report["outcome"].isin(PROBLEMS).sum() > 0


def test_repush_after_the_missing_material_is_created(dag, dataset, kingdee_emulator, tmp_path):
    """Bills naming a SKU Kingdee did not know were held back; once the material exists, re-running
    the window loads exactly those bills and reports the rest as existing."""
    _run(dag, WINDOW)
    _, _, first = _reports(tmp_path)
    rejected = set(first.loc[first["outcome"] == "held", "bill_no"])
    assert rejected

    client = _kingdee(kingdee_emulator)
    # a material is used in the bill's stock organisation (FStockOrgId = warehouse_no): create it there
    skus = {
        line["spec_no"]: o["warehouse_no"]
        for o in dataset.orders
        if o["order_no"] in rejected
        for line in o["details_list"]
    }
    unknown = {
        (sku, org)
        for sku, org in skus.items()
        if not client.execute_bill_query("BD_MATERIAL", ["FNumber"], f"FNumber = '{sku}'")
    }
    assert unknown
    for sku, org in sorted(unknown):  # what a person does in Kingdee: create the material
        status = client._call(
            "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save",
            {
                "formid": "BD_MATERIAL",
                "data": {
                    "Model": {
                        "FMATERIALID": 0,
                        "FNumber": sku,
                        "FName": f"新物料 {sku}",
                        "FCreateOrgId": {"FNumber": org},
                        "FUseOrgId": {"FNumber": org},
                    }
                },
            },
        )
        assert status["Result"]["ResponseStatus"]["IsSuccess"] is True, status

    before = {row[0] for row in client.execute_bill_query("SAL_OUTSTOCK", ["FBillNo"])}
    _run(dag, WINDOW)  # still red: the quarantined orders have zero quantities
    _, _, again = _reports(tmp_path)
    assert set(again.loc[again["outcome"] == "created", "bill_no"]) == rejected
    assert set(again.loc[again["outcome"] == "existing", "bill_no"]) == before
    assert not again["outcome"].isin(["rejected", "held"]).any()
    after = {row[0] for row in client.execute_bill_query("SAL_OUTSTOCK", ["FBillNo"])}
    assert after == before | rejected


def test_a_dry_run_posts_nothing_and_reports_what_would_be_created(dag, kingdee_emulator, tmp_path):
    _run(dag, {**WINDOW, "dry_run": True}, state="success")  # a dry run shows problems, it is never red
    files, quarantine, report = _reports(tmp_path, dry_run=True)
    assert files.dir.name.endswith(",dry_run")  # its own folder: a window's real record is never replaced
    assert (report["outcome"] == "would_create").sum() > 0 and (report["outcome"] == "held").any() and len(quarantine)
    assert not _kingdee(kingdee_emulator).execute_bill_query("SAL_OUTSTOCK", ["FID"])
    assert not files.complete.exists()  # nothing loaded: no scheme waiting for this one may start
    real, _, _ = _reports(tmp_path)
    assert not real.dir.exists()


def test_a_wrong_secret_fails_the_load_at_once_without_retries(
    airflow_db, wdt_emulator, kingdee_emulator, tmp_path, monkeypatch
):
    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KINGDEE_DEFAULT",
        json.dumps(
            {
                "conn_type": "generic",
                "host": kingdee_emulator.url,
                "login": KINGDEE["username"],
                "password": "0" * 32,
                "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"]},
            }
        ),
    )
    from erpsync.dag_factory import build_dags

    run = build_dags()[DAG_ID].test(run_conf=WINDOW)
    load = next(ti for ti in run.get_task_instances() if ti.task_id == "load")
    assert (run.state, load.state, load.try_number) == ("failed", "failed", 1)
    assert not _kingdee(kingdee_emulator).execute_bill_query("SAL_OUTSTOCK", ["FID"])


def test_the_openapi2_transport_loads_the_same_bills_except_taobao_orders(
    airflow_db, wdt_emulator, kingdee_emulator, dataset, tmp_path, monkeypatch
):
    """The same scheme over WDT's direct endpoint: every bill the Qimen run made, field for field, but
    for 淘系 orders, which the direct endpoint does not return [DOC]."""
    from emulators.kingdee import make_server
    from erpsync.dag_factory import build_dags
    from tests.conftest import SEED, serving

    keys = [
        "FBillNo",
        "FDate",
        "FCustomerID.FNumber",
        "FSaleOrgId.FNumber",
        "FStockOrgId.FNumber",
        "F_ora_Text_ysdh",
        "F_ora_Text_ckdh",
        "FMaterialID.FNumber",
        "FRealQty",
        "FTaxPrice",
        "FStockID.FNumber",
        "FAllAmount",
    ]
    _connections(monkeypatch, tmp_path / "qimen", wdt_emulator, kingdee_emulator)
    _run(build_dags()[DAG_ID], WINDOW)
    qimen = sorted(map(tuple, _kingdee(kingdee_emulator).execute_bill_query("SAL_OUTSTOCK", keys)))

    with serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kingdee-direct", seed=SEED)) as direct_kd:
        _connections(monkeypatch, tmp_path / "openapi2", wdt_emulator, direct_kd)
        monkeypatch.setenv(
            "AIRFLOW_CONN_WDT_DEFAULT",
            json.dumps(
                {
                    "conn_type": "wdt",
                    "host": wdt_emulator.openapi2_url,
                    "login": "test2-xx",
                    "password": "12345",
                    "extra": {"transport": "openapi2", "sid": WDT["sid"], "min_interval_seconds": 0},
                }
            ),
        )
        _run(build_dags()[DAG_ID], WINDOW)
        direct = sorted(map(tuple, _kingdee(direct_kd).execute_bill_query("SAL_OUTSTOCK", keys)))

    taobao = {o["order_no"] for o in dataset.orders if o["platform_id"] == 1}
    assert taobao & {row[0] for row in qimen}
    assert direct == [row for row in qimen if row[0] not in taobao]
