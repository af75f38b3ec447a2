"""Preconditions (前置条件) hold for a run's window: the upstream scheme's complete windows cover it."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath
from hypothesis import given
from hypothesis import strategies as st

from erpsync.dag_factory import build_dags
from erpsync.preconditions import completed_windows, mark_complete, uncovered
from erpsync.scheme import INCLUDE_DIR
from erpsync.staging import RunFiles
from erpsync.windows import Window

DAY = pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai")


def _hours(start: int, end: int) -> Window:
    return Window(DAY.add(hours=start), DAY.add(hours=end))


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 12)), max_size=8), st.integers(0, 20), st.integers(1, 10))
def test_the_gaps_are_exactly_what_no_complete_window_covers(parts, start, span):
    done = [_hours(s, s + n) for s, n in parts]
    window = _hours(start, start + span)
    gaps = uncovered(window, done)
    for hour in range(start, start + span):  # each hour of the window is in a gap or in a done window
        point = DAY.add(hours=hour, minutes=30)
        in_gap = any(g.start <= point < g.end for g in gaps)
        in_done = any(d.start <= point < d.end for d in done)
        assert in_gap != in_done
    assert all(window.start <= g.start < g.end <= window.end for g in gaps)


def test_only_complete_unfiltered_windows_count(tmp_path):
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    mark_complete(RunFiles(root, "upstream", _hours(0, 24)), {"created": 3})
    mark_complete(RunFiles(root, "upstream", _hours(24, 48), {"shop_no": "FENXIAO004"}), {"created": 1})
    RunFiles(root, "upstream", _hours(48, 72)).dir.mkdir(parents=True)  # a window that never completed
    assert completed_windows(root, "upstream") == [_hours(0, 24)]
    assert completed_windows(root, "nobody") == []
    assert completed_windows(root, "upstream", overlapping=_hours(24, 30)) == []  # touches the day, not inside it


@pytest.fixture
def two_schemes(tmp_path):
    """include/ with the sales scheme waiting for a second scheme, a copy with another dag_id."""
    include = tmp_path / "include"
    shutil.copytree(INCLUDE_DIR, include)
    sales = include / "schemes" / "sales_outstock.yaml"
    text = sales.read_text(encoding="utf-8")
    (include / "schemes" / "materials.yaml").write_text(
        text.replace("dag_id: wdt_kingdee_sales_outstock", "dag_id: upstream_sync").replace(
            "name: sales_outstock", "name: materials"
        ),
        encoding="utf-8",
    )
    sales.write_text(text.replace("  preconditions: []", "  preconditions: [upstream_sync]"), encoding="utf-8")
    return include


def test_the_sensor_waits_until_the_upstream_covers_the_window(two_schemes, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", (tmp_path / "staging").as_uri())
    dag = build_dags(two_schemes)["wdt_kingdee_sales_outstock"]
    sensor = dag.get_task("precondition_upstream_sync")
    assert sensor.mode == "reschedule" and dag.get_task("extract").upstream_task_ids == {"precondition_upstream_sync"}
    context = {"params": {"window_start": "2026-11-01T06:00:00", "window_end": "2026-11-01T18:00:00", "filters": {}}}
    root = ObjectStoragePath((tmp_path / "staging").as_uri())

    assert sensor.poke(context) is False
    logged = capsys.readouterr().out  # Airflow's task logger writes to stdout outside a worker
    assert "Waiting for upstream_sync" in logged and "missing [2026-11-01 06:00:00, 2026-11-01 18:00:00)" in logged
    mark_complete(RunFiles(root, "upstream_sync", _hours(0, 12)), {})
    assert sensor.poke(context) is False
    assert "missing [2026-11-01 12:00:00, 2026-11-01 18:00:00)" in capsys.readouterr().out
    mark_complete(RunFiles(root, "upstream_sync", Window(DAY.add(hours=12), DAY + timedelta(days=1))), {})
    assert sensor.poke(context) is True  # two daily halves cover a window given by params


def test_an_upstream_scheme_in_another_zone_is_read_in_its_own_zone(two_schemes, tmp_path, monkeypatch):
    """The upstream scheme runs in UTC, so its folders are keyed in UTC wall clock: the sensor of a
    Shanghai scheme reads them as UTC, or it would see every upstream window eight hours early."""
    materials = two_schemes / "schemes" / "materials.yaml"
    materials.write_text(
        materials.read_text(encoding="utf-8").replace("timezone: Asia/Shanghai}", "timezone: UTC}"), encoding="utf-8"
    )
    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", (tmp_path / "staging").as_uri())
    sensor = build_dags(two_schemes)["wdt_kingdee_sales_outstock"].get_task("precondition_upstream_sync")
    # Shanghai 2026-11-01 08:00-16:00 is UTC 00:00-08:00
    context = {"params": {"window_start": "2026-11-01T08:00:00", "window_end": "2026-11-01T16:00:00", "filters": {}}}
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    utc_day = Window(pendulum.datetime(2026, 11, 1, tz="UTC"), pendulum.datetime(2026, 11, 2, tz="UTC"))
    mark_complete(RunFiles(root, "upstream_sync", utc_day), {})
    assert (root / "upstream_sync" / "window=20261101T000000_20261102T000000").exists()
    assert sensor.poke(context) is True
    early = {"params": {"window_start": "2026-11-01T06:00:00", "window_end": "2026-11-01T10:00:00", "filters": {}}}
    assert sensor.poke(early) is False  # 06:00-08:00 Shanghai is the UTC day before, not loaded
