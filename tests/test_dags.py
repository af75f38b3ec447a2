"""The DAG folder parses cleanly and each scheme's settings reach its DAG."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from erpsync.scheme import INCLUDE_DIR, load_scheme, scheme_paths
from erpsync.windows import resolve_window
from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.models import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_the_dag_folder_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    schemes = {load_scheme(p).dag_id for p in scheme_paths()}
    assert set(dagbag.dag_ids) == schemes | {f"{dag_id}_reconcile" for dag_id in schemes}


def test_each_scheme_has_a_daily_reconciliation_after_its_windows(dagbag):
    scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_return.yaml")
    dag = dagbag.dags["wdt_kingdee_sales_return_reconcile"]
    assert dag.task_ids == ["windows_loaded", "reconcile"]
    sensor = dag.get_task("windows_loaded")
    assert sensor.upstream == scheme.dag_id and sensor.mode == "reschedule" and sensor.marker == "finished.json"
    assert dag.max_active_runs > 1  # a day asked for by hand never queues behind a check that waits
    assert dag.timetable == type(dag.timetable)(scheme.settings.reconcile.cron, timezone="Asia/Shanghai")
    assert set(dag.params) == {"day", "days", "repush"} and dag.params["days"] == scheme.settings.reconcile.days
    # the window it waits for: the last N days before the run, in the scheme's zone
    run = type("Run", (), {"run_after": __import__("pendulum").datetime(2026, 11, 8, 0, 30, tz="UTC")})()
    window = sensor.window_of({"params": {}, "dag_run": run})
    assert str(window) == "[2026-11-01 00:00:00, 2026-11-08 00:00:00) Asia/Shanghai"


def test_the_sales_outstock_dag_follows_its_scheme(dagbag):
    scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
    dag = dagbag.dags["wdt_kingdee_sales_outstock"]
    assert dag.task_ids == ["extract", "validate", "transform", "load", "prune_staging"]
    assert [t.task_id for t in dag.get_task("load").upstream_list] == ["transform"]
    # old windows leave the staging root after every run, red ones too, without changing the run's state
    prune = dag.get_task("prune_staging")
    assert prune.is_teardown and [t.task_id for t in prune.upstream_list] == ["load"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable == type(dag.timetable)(scheme.settings.cron, timezone="Asia/Shanghai")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.is_paused_upon_creation is True  # connections first, then unpause
    assert dag.get_task("load").max_active_tis_per_dag == 1  # windows load one after another, backfills too
    assert set(dag.params) == {"window_start", "window_end", "filters", "dry_run"}
    for task in dag.tasks:
        assert task.retries == scheme.settings.retries
        assert task.retry_delay == timedelta(seconds=scheme.settings.retry_delay_seconds)


@pytest.mark.parametrize(
    "conf",
    [
        {"filters": {"shop_no": "../../x"}},
        {"filters": {"status": "5"}},
        {"filters": {"shop_no": 5}},
        {"window_start": "yesterday"},
        {"window_end": "2026-11-01; rm -rf /"},
    ],
)
def test_the_trigger_form_refuses_unsafe_params(dagbag, conf):
    """Airflow checks params against their schema when a run is triggered: nothing reaches a task."""
    from airflow.sdk.definitions.param import ParamValidationError

    params = copy.deepcopy(dagbag.dags["wdt_kingdee_sales_outstock"].params)
    with pytest.raises(ParamValidationError):
        params.update(conf)
        params.validate()


def test_the_trigger_form_takes_a_window_and_a_shop(dagbag):
    params = copy.deepcopy(dagbag.dags["wdt_kingdee_sales_outstock"].params)
    params.update(
        {"window_start": "2026-11-01", "window_end": "2026-11-02T00:00:00+08:00", "filters": {"shop_no": "FENXIAO004"}}
    )
    assert params.validate()["filters"] == {"shop_no": "FENXIAO004"}


def test_the_trigger_forms_date_picker_value_is_a_window_bound(dagbag):
    """The picker sends UTC with milliseconds: 2026-11-02 00:00 in Shanghai."""
    params = copy.deepcopy(dagbag.dags["wdt_kingdee_sales_outstock"].params)
    params.update({"window_start": "2026-11-01T16:00:00.000Z", "window_end": "2026-11-02T16:00:00.000Z"})
    chosen = params.validate()
    window = resolve_window(
        window_start=chosen["window_start"],
        window_end=chosen["window_end"],
        data_interval_start=None,
        data_interval_end=None,
        run_after=None,
        cron="0 * * * *",
        timezone="Asia/Shanghai",
    )
    assert str(window) == "[2026-11-02 00:00:00, 2026-11-03 00:00:00) Asia/Shanghai"


def test_the_trigger_form_needs_nothing_but_may_ask_for_a_dry_run(dagbag):
    params = copy.deepcopy(dagbag.dags["wdt_kingdee_sales_outstock"].params)
    assert params.validate() == {"window_start": None, "window_end": None, "filters": {}, "dry_run": False}
    params.update({"filters": None, "dry_run": True})
    assert params.validate()["dry_run"] is True


def test_every_connection_has_a_pool_for_its_tasks(dagbag):
    """The load task holds `concurrency` slots of the pool named after its Kingdee connection, the
    extract task one of the pool named after its WDT connection; a missing pool would leave them
    unscheduled, so include/pools.json (imported by the demo and the deployment) must name each one
    with enough slots."""
    import json

    pools = json.loads((INCLUDE_DIR / "pools.json").read_text(encoding="utf-8"))
    for path in scheme_paths():
        scheme = load_scheme(path)
        load = dagbag.dags[scheme.dag_id].get_task("load")
        assert (load.pool, load.pool_slots) == (scheme.target.connection, scheme.settings.load.concurrency)
        assert pools[load.pool]["slots"] >= load.pool_slots
        extract = dagbag.dags[scheme.dag_id].get_task("extract")
        assert (extract.pool, extract.pool_slots) == (scheme.source.connection, 1)
        assert pools[extract.pool]["slots"] >= 1


def test_plugins_folder_is_not_scanned_for_airflow_plugins():
    # Airflow imports every .py of the plugins folder under its bare file name; erpsync is a library.
    from airflow.sdk._shared.module_loading import find_path_from_directory

    found = list(find_path_from_directory(str(REPO / "plugins"), ".airflowignore", "glob"))
    assert not [f for f in found if "/erpsync/" in f]


def test_parsing_loads_no_client_or_data_library():
    """Parsing reads the scheme files only: no HTTP client, pandas or GX is even imported."""
    import subprocess
    import sys

    probe = (
        "import sys; from erpsync.dag_factory import build_dags; dags = build_dags(); "
        "loaded = [m for m in ('requests', 'pandas', 'great_expectations', 'pyarrow') if m in sys.modules]; "
        "print(list(dags), loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO / "plugins"
    ).stdout
    assert (
        out.strip().splitlines()[-1]
        == "['wdt_kingdee_purchase_instock', 'wdt_kingdee_sales_outstock', 'wdt_kingdee_sales_return', "
        "'wdt_kingdee_purchase_instock_reconcile', 'wdt_kingdee_sales_outstock_reconcile', "
        "'wdt_kingdee_sales_return_reconcile'] []"
    )


def test_a_disabled_scheme_skips_its_runs(edited_scheme):
    from airflow.sdk.exceptions import AirflowSkipException

    from erpsync.dag_factory import build_dag

    dag = build_dag(edited_scheme(lambda data: data["settings"].update(enabled=False)))
    assert dag.is_paused_upon_creation is True
    extract = dag.get_task("extract").python_callable
    with pytest.raises(AirflowSkipException, match="disabled"):
        extract(params={"window_start": "2026-11-01", "window_end": "2026-11-02"})


def test_backfill_plans_one_run_per_schedule_window(airflow_db):
    """`airflow backfill create` over three hours of the hourly schedule plans one run per window."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True, cwd=REPO)
    plan = subprocess.run(
        [
            airflow,
            "backfill",
            "create",
            "--dag-id",
            "wdt_kingdee_sales_outstock",
            "--dry-run",
            "--from-date",
            "2026-11-01T00:00:00+08:00",
            "--to-date",
            "2026-11-01T03:00:00+08:00",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    assert len(re.findall(r"^\| 2026-1[01]-\d\d \d\d:00:00\+0[08]:00", plan, re.M)) == 4, plan


def test_a_task_process_builds_only_the_dag_it_runs(monkeypatch):
    from erpsync.dag_factory import build_dags

    everything = build_dags()
    # what Airflow's task runner sets before it parses the DAG file for one task
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "wdt_kingdee_sales_return_reconcile")
    assert list(build_dags()) == ["wdt_kingdee_sales_return_reconcile"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "wdt_kingdee_sales_return")
    [only] = build_dags().values()
    assert only.dag_id == "wdt_kingdee_sales_return" and only.task_ids == everything[only.dag_id].task_ids
