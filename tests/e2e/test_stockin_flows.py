"""The flows beside the sales stock-out, from their scheme files alone: refund stock-ins → 销售退货单
(SAL_RETURNSTOCK) and purchase stock-ins → 采购入库单 (STK_InStock), against both emulators.

Each DAG runs twice (the second run creates nothing); a return whose sale is not in Kingdee yet is held
with that reason and saved by a later run; with every fault of both emulators on, the plain steps still
leave exactly one bill per completed stock-in. Quantities and money are compared to the cent with the
WDT emulator's ground truth.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from tests.conftest import DAYS, KINGDEE, ORDERS, SEED, START, WDT, serving
from tests.e2e.test_dag_end_to_end import _connections

pytestmark = pytest.mark.e2e

WINDOW = {"window_start": "2026-11-01T00:00:00", "window_end": "2026-11-15T00:00:00"}
FLOWS = {  # dag_id -> (WDT ground truth list, Kingdee form, entry entity, quantity field, price field)
    "wdt_kingdee_sales_return": ("refunds", "SAL_RETURNSTOCK", "FEntity", "goods_count", "src_price"),
    "wdt_kingdee_purchase_instock": ("purchases", "STK_InStock", "FInStockEntry", "right_num", "right_price"),
}


def _truth(kind: str, seed: int = SEED, orders: int = ORDERS, days: int = DAYS) -> dict[str, tuple[Decimal, Decimal]]:
    """Completed stock-ins (status 80) -> (quantity, amount) as WDT holds them."""
    from emulators.stockins import build_stockin_data

    _, _, _, qty, price = next(f for f in FLOWS.values() if f[0] == kind)
    truth = {}
    for stockin in getattr(build_stockin_data(seed, orders, START, days), kind):
        if str(stockin["status"]) == "80":
            lines = stockin["details_list"]
            truth[stockin["order_no"]] = (
                sum((Decimal(line[qty]) for line in lines), Decimal(0)),
                sum((Decimal(line[qty]) * Decimal(line[price]) for line in lines), Decimal(0)),
            )
    return truth


def _in_kingdee(server, form: str, entity: str) -> dict[str, tuple[Decimal, Decimal]]:
    """Each bill of ``form`` -> (quantity, amount), and never a number twice."""
    bills = server.emulator.read_bills(form)
    numbers = Counter(b["FBillNo"] for b in bills)
    assert not [n for n, count in numbers.items() if count > 1]
    return {
        b["FBillNo"]: (
            sum((Decimal(e["FRealQty"]) for e in b[entity]), Decimal(0)),
            sum((Decimal(e["FRealQty"]) * Decimal(e["FTaxPrice"]) for e in b[entity]), Decimal(0)),
        )
        for b in bills
    }


@pytest.fixture
def dags(airflow_db, wdt_emulator, kingdee_emulator, tmp_path, monkeypatch):
    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    from erpsync.dag_factory import build_dags

    return build_dags()


def _report(tmp_path, dag_id):
    from erpsync.staging import RunFiles
    from erpsync.steps.load import read_report
    from erpsync.windows import Window, parse_datetime

    window = Window.of(parse_datetime(WINDOW["window_start"], "s"), parse_datetime(WINDOW["window_end"], "e"))
    return read_report(RunFiles(ObjectStoragePath((tmp_path / "staging").as_uri()), dag_id, window))


def test_purchase_receipts_load_once_to_the_cent(dags, kingdee_emulator, tmp_path):
    dag = dags["wdt_kingdee_purchase_instock"]
    for created in (True, False):  # the second run finds every bill and sends nothing
        run = dag.test(run_conf=WINDOW)
        assert run.state == "success"
        outcomes = Counter(_report(tmp_path, dag.dag_id)["outcome"])
        assert set(outcomes) == ({"created"} if created else {"existing"})
    truth = _truth("purchases")
    assert truth and _in_kingdee(kingdee_emulator, "STK_InStock", "FInStockEntry") == truth


def test_a_return_waits_for_its_sale_then_loads_once_to_the_cent(dags, kingdee_emulator, dataset, tmp_path):
    returns, sales = dags["wdt_kingdee_sales_return"], dags["wdt_kingdee_sales_outstock"]
    truth = _truth("refunds")
    assert truth

    first = returns.test(run_conf=WINDOW)  # before the sales flow: no sale is in Kingdee
    assert first.state == "failed"  # on_problem: fail, and the task log names each held return
    report = _report(tmp_path, returns.dag_id)
    assert set(report["outcome"]) == {"held"} and set(report["order_no"]) == set(truth)
    assert report["message"].str.contains("原销售出库单 not in Kingdee yet: SAL_OUTSTOCK has no bill").all()
    assert not kingdee_emulator.emulator.read_bills("SAL_RETURNSTOCK")

    sales.test(run_conf=WINDOW)  # red for its own defective orders; every clean sale is loaded
    for expected in ("created", "existing"):  # a later run saves the held returns, the one after adds none
        run = returns.test(run_conf=WINDOW)
        assert run.state == "success"
        assert set(_report(tmp_path, returns.dag_id)["outcome"]) == {expected}
    assert _in_kingdee(kingdee_emulator, "SAL_RETURNSTOCK", "FEntity") == truth
    bill = kingdee_emulator.emulator.read_bills("SAL_RETURNSTOCK")[0]
    assert bill["FEntity"][0]["FReturnType"] == "THLX01_SYS" and bill["FBillTypeID"] == "XSTHD01_SYS"


@pytest.mark.parametrize("dag_id", list(FLOWS))
def test_every_fault_on_still_one_bill_per_stockin(dag_id, tmp_path):
    """WDT answers 5xx and throttles; Kingdee loses replies and answers 5xx. The plain steps, retried
    as Airflow would, end with exactly the completed stock-ins, each once, to the cent."""
    from emulators.kingdee import make_server as kingdee_server
    from emulators.wdt import make_server as wdt_server
    from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeTransientError
    from erpsync.kingdee.connector import KingdeeTarget
    from erpsync.run import Run
    from erpsync.scheme import INCLUDE_DIR, LoadSettings, load_schemes
    from erpsync.steps.extract import extract
    from erpsync.steps.load import load
    from erpsync.steps.transform import transform
    from erpsync.steps.validate import validate
    from erpsync.wdt.client import WdtClient, WdtConfig, WdtTransientError
    from erpsync.wdt.connector import WdtReader
    from erpsync.wdt.paging import PagingError
    from erpsync.windows import Window

    kind, form, entity, _, _ = FLOWS[dag_id]
    schemes = {s.dag_id: s for s in load_schemes(INCLUDE_DIR)}
    settings = LoadSettings(chunk_size=3, concurrency=2, rounds=8)
    wdt = wdt_server("127.0.0.1", 0, **WDT, seed=11, orders=120, start=START, days=5, error_rate=0.2)
    kingdee = kingdee_server(
        "127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=11, lost_response_rate=0.25, error_rate=0.1
    )
    with serving(wdt) as wdt, serving(kingdee) as kingdee:
        reader = WdtClient(
            WdtConfig(
                **WDT, url=wdt.url, min_interval_seconds=0, backoff_seconds=0.01, rate_limit_url=str(tmp_path / "r")
            )
        )
        writer = KingdeeTarget(
            K3CloudClient(
                K3CloudConfig(server_url=kingdee.url, **KINGDEE, backoff_seconds=0.01, max_backoff_seconds=0.02)
            )
        )
        first = pendulum.datetime(START.year, START.month, START.day, tz="Asia/Shanghai")
        order = ["wdt_kingdee_sales_outstock", dag_id] if kind == "refunds" else [dag_id]
        for name in order:  # a return's sale first
            scheme = schemes[name].edited("settings.load", settings)
            for day in range(14):
                run = Run.open(
                    scheme,
                    Window(first.add(days=day), first.add(days=day + 1)),
                    ObjectStoragePath((tmp_path / "st").as_uri()),
                )
                for _attempt in range(10):
                    try:
                        extract(run, WdtReader(reader, scheme.source))
                        validate(run)
                        transform(run)
                        load(run, writer)
                        break
                    except (WdtTransientError, PagingError, KingdeeTransientError):
                        continue
                else:
                    pytest.fail(f"{name} {run.window} never loaded")
        assert reader.retries  # the faults did happen
        truth = _truth(kind, seed=11, orders=120, days=5)
        assert truth and _in_kingdee(kingdee, form, entity) == truth
