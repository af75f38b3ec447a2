"""A tenant whose scheme runs in another zone than WDT's (``settings.schedule.timezone: UTC``).

Its windows, trigger params, staging folders, run notes and pages are in UTC wall clock; WDT is still
asked in its own zone (Asia/Shanghai, from the API definition). Each order is read by the run whose
UTC window holds it, and nothing else.
"""

from __future__ import annotations

import io
import json

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from tests.e2e.test_dag_end_to_end import _connections

pytestmark = pytest.mark.e2e

DAG_ID = "wdt_kingdee_sales_outstock"


def _in_utc(data: dict) -> None:
    data["settings"]["schedule"]["timezone"] = "UTC"
    data["settings"]["load"]["on_problem"] = "warn"  # the data set's bad orders: green, with warnings


def test_a_scheme_in_utc_reads_loads_and_files_its_windows_in_utc(
    airflow_db, wdt_emulator, kingdee_emulator, dataset, tmp_path, monkeypatch, edited_scheme
):
    from erpsync.dag_factory import build_dag
    from erpsync.staging import read_parquet
    from erpsync.ui.staged import Staging
    from erpsync.windows import Window

    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    scheme = edited_scheme(_in_utc)
    dag = build_dag(scheme)
    assert str(dag.timetable.timezone) == "UTC"
    # naive params are UTC: 2026-11-01 16:00 UTC is 2026-11-02 00:00 in Shanghai
    run = dag.test(run_conf={"window_start": "2026-11-01T16:00:00", "window_end": "2026-11-03T16:00:00"})
    assert run.state == "success", run.state
    window = Window.of(pendulum.datetime(2026, 11, 1, 16), pendulum.datetime(2026, 11, 3, 16), "UTC")

    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    folder = root / DAG_ID / "window=20261101T160000_20261103T160000"
    assert folder.exists(), [p.name for p in (root / DAG_ID).iterdir()]
    summary = json.loads((folder / "extract_summary.json").read_text())
    read = Window.from_dict(summary["read"])
    assert read.timezone == "UTC" and read.start == window.start - scheme.source.lookback and read.end == window.end

    # WDT was asked in Shanghai time: the orders staged are those whose last change (Shanghai wall clock)
    # falls in the read, from 2026-11-01 22:00 (the 2 h look-back) to 2026-11-04 00:00
    staged = set(read_parquet(folder / "orders.parquet")["order_no"])
    expected = {
        o["order_no"]
        for o in dataset.orders
        if o["status"] == 110 and "2026-11-01 22:00:00" <= o["modified"] < "2026-11-04 00:00:00"
    }
    assert staged == expected and expected

    # the pages read the folder back in the scheme's zone
    pages = Staging(root, {DAG_ID: "UTC"})
    assert [f.window for f in pages.windows(DAG_ID)] == [window]
    assert pages.windows(DAG_ID)[0].window.key == window.key


def test_a_scheme_in_another_zone_reconciles_its_day_without_false_differences(
    airflow_db, wdt_emulator, kingdee_emulator, dataset, tmp_path, monkeypatch, edited_scheme
):
    """Los Angeles' 2026-11-02 is 16:00 the 2nd to 16:00 the 3rd in Shanghai, where the warehouses ship
    from 09:00 to 22:00: the day's bills are dated the 2nd or the 3rd as the mapping writes them (WDT's
    local time), and the bills dated the 2nd before 16:00 are Los Angeles' 1st. None of that is a
    difference; what is missing is exactly the orders the run could not load, and the totals differ by
    exactly them."""
    from erpsync.cli import main
    from erpsync.dag_factory import build_dag

    def in_los_angeles(data: dict) -> None:
        _in_utc(data)
        data["settings"]["schedule"]["timezone"] = "America/Los_Angeles"

    _connections(monkeypatch, tmp_path, wdt_emulator, kingdee_emulator)
    scheme = edited_scheme(in_los_angeles)
    # loads Shanghai's 2nd 00:00 to the 3rd 16:00: the day, and what is dated the 2nd before it
    run = build_dag(scheme).test(run_conf={"window_start": "2026-11-01T08:00:00", "window_end": "2026-11-03T00:00:00"})
    assert run.state == "success", run.state
    out = io.StringIO()
    include = str(tmp_path / "include")
    code = main(["--include", include, "reconcile", str(scheme.path), "--day", "2026-11-02", "--json"], out=out)
    [day] = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]

    of_day = {
        o["order_no"]
        for o in dataset.orders
        if o["status"] == 110 and "2026-11-02 16:00:00" <= o["consign_time"] < "2026-11-03 16:00:00"
    }
    # not loaded: the bad ones, and those changed after the run's read (to 2026-11-03 16:00 Shanghai)
    later = {o["order_no"] for o in dataset.orders if o["modified"] >= "2026-11-03 16:00:00"}
    unloaded = of_day & (set(dataset.defects) | later)
    assert day["totals"]["wdt"]["documents"] == len(of_day) > len(unloaded) > 0
    assert not day["extra"] and not day["mismatched"] and not day["deleted"], day
    assert {m["wdt_no"] for m in day["missing"]} == unloaded and code == 1
    assert {m["reason"] for m in day["missing"]} <= {"quarantined", "held", "not read yet"}
    assert day["totals"]["kingdee"]["bills"] == len(of_day - unloaded)
