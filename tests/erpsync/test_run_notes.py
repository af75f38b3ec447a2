"""The note the scheduler gives each run: its window, however the run was started."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pendulum
from airflow.timetables.interval import CronDataIntervalTimetable

from erpsync.run_notes import on_dag_run_running

SHANGHAI = pendulum.timezone("Asia/Shanghai")
PARAMS: dict[str, Any] = {"window_start": None, "window_end": None, "filters": {}, "dry_run": False}


def _run(conf=None, start=None, end=None, run_after=None, note=None, params=PARAMS):
    """A started run as the scheduler holds it: its serialized DAG with the core timetable."""
    dag = SimpleNamespace(params=params, timetable=CronDataIntervalTimetable("0 * * * *", SHANGHAI))
    return SimpleNamespace(
        dag=dag,
        conf=conf or {},
        data_interval_start=start,
        data_interval_end=end,
        run_after=run_after or pendulum.datetime(2026, 11, 30, 1, 30, tz="UTC"),
        note=note,
    )


def _noted(run) -> str | None:
    on_dag_run_running(dag_run=run, msg="started")
    return run.note


def test_a_backfill_run_is_noted_with_its_interval_in_shanghai():
    run = _run(start=pendulum.datetime(2026, 11, 1, 16, tz="UTC"), end=pendulum.datetime(2026, 11, 1, 17, tz="UTC"))
    assert _noted(run) == "window [2026-11-02 00:00:00, 2026-11-02 01:00:00) Asia/Shanghai"


def test_a_run_with_window_params_is_noted_with_them_not_its_interval():
    run = _run(
        conf={"window_start": "2026-11-01T16:00:00.000Z", "window_end": "2026-11-03"},
        start=pendulum.datetime(2026, 11, 30, 0, tz="UTC"),
        end=pendulum.datetime(2026, 11, 30, 1, tz="UTC"),
    )
    assert _noted(run) == "window [2026-11-02 00:00:00, 2026-11-03 00:00:00) Asia/Shanghai"


def test_a_run_without_interval_or_params_gets_the_last_interval_before_it():
    assert _noted(_run()) == "window [2026-11-30 08:00:00, 2026-11-30 09:00:00) Asia/Shanghai"


def test_a_users_note_is_kept_and_other_dags_and_bad_windows_are_left_alone():
    assert _noted(_run(note="rerun for shop A")) == "rerun for shop A"
    assert _noted(_run(params={"x": 1})) is None
    assert _noted(_run(conf={"window_start": "2026-11-02"})) is None  # its first task fails and says why


def test_a_scheme_in_another_zone_is_noted_in_it_and_its_naive_params_are_its_wall_clock():
    run = _run(conf={"window_start": "2026-11-01T16:00:00", "window_end": "2026-11-02"})
    run.dag.timetable = CronDataIntervalTimetable("0 0 * * *", pendulum.timezone("UTC"))
    assert _noted(run) == "window [2026-11-01 16:00:00, 2026-11-02 00:00:00) UTC"
