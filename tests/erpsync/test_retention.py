"""Retention: window folders older than ``[erpsync] staging_retention_days`` leave the staging root."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.preconditions import completed_windows, mark_complete
from erpsync.retention import keep_days, prune
from erpsync.staging import RunFiles, parse_folder, window_folders, write_json
from erpsync.windows import Window

DAG = "wdt_kingdee_sales_outstock"
NOW = pendulum.datetime(2026, 12, 31, 12, tz="Asia/Shanghai")


def _day(days_ago: int) -> Window:
    end = NOW.start_of("day").subtract(days=days_ago)
    return Window(end.subtract(days=1), end)


def _stage(root, window: Window, filters: dict | None = None, complete: bool = False, written=None) -> RunFiles:
    """A window folder as the steps leave it, its files dated ``written`` (default: its window's end)."""
    files = RunFiles(root, DAG, window, filters)
    write_json({"orders": 1}, files.extract_summary)
    write_json({"orders": 1}, files.quality / "summary.json")
    write_json({"x": 1}, files.quality / "docs" / "index.json")
    write_json({"part": 0}, files.load_report / "part-000000.json")
    if complete:
        mark_complete(files, {"problems": 0})
    stamp = (written or window.end).timestamp()
    for path in (files.dir.path, *[str(p) for p in _local(files.dir).rglob("*")]):
        os.utime(path, (stamp, stamp))
    return files


def _local(path):
    from pathlib import Path

    return Path(path.path)


@pytest.fixture
def root(tmp_path):
    return ObjectStoragePath(tmp_path.as_uri())


def test_old_windows_go_recent_ones_stay(root):
    old = _stage(root, _day(100))
    edge = _stage(root, _day(89))
    recent = _stage(root, _day(1))
    narrowed = _stage(root, _day(120), filters={"shop_no": "TMALL001"})
    pruned = prune(root, DAG, 90, NOW)
    assert sorted(pruned) == sorted([old.dir.name, narrowed.dir.name])
    assert not old.dir.exists() and not narrowed.dir.exists()
    assert edge.extract_summary.exists() and recent.extract_summary.exists()
    assert prune(root, DAG, 90, NOW) == []  # nothing left to do


def test_a_complete_window_keeps_its_marker_for_preconditions(root):
    files = _stage(root, _day(200), complete=True)
    assert prune(root, DAG, 90, NOW) == [files.dir.name]
    assert [p.name for p in files.dir.iterdir()] == ["complete.json"]
    assert _day(200) in completed_windows(root, DAG)  # a downstream backfill over that day still may start
    assert prune(root, DAG, 90, NOW) == []  # a pruned window is not pruned again


def test_a_window_written_lately_is_left_alone(root):
    """A backfill of an old window: another run's prune must not delete its files under it."""
    files = _stage(root, _day(300), written=NOW.subtract(hours=2))
    assert prune(root, DAG, 90, NOW) == []
    assert files.extract_summary.exists()
    assert prune(root, DAG, 90, NOW.add(days=1)) == [files.dir.name]


def test_zero_keeps_everything_and_strangers_are_untouched(root):
    files = _stage(root, _day(1000))
    stranger = root / DAG / "notes"
    stranger.mkdir(parents=True, exist_ok=True)
    write_json({}, stranger / "x.json")
    shared = root / "_gx_static" / "1.24.1"
    write_json({}, shared / "styles.json")
    assert prune(root, DAG, 0, NOW) == []
    assert files.extract_summary.exists()
    assert prune(root, DAG, 1, NOW) == [files.dir.name]
    assert (stranger / "x.json").exists() and (shared / "styles.json").exists()
    assert prune(root, "no_such_dag", 1, NOW) == []


def test_window_folders_are_parsed_and_sorted_newest_first(root):
    for days in (5, 1, 3):
        _stage(root, _day(days))
    _stage(root, _day(1), filters={"shop_no": "X"})
    found = window_folders(root, DAG)
    assert [f.window for f in found] == [_day(1), _day(1), _day(3), _day(5)]
    assert found[0].filters_digest is None and found[1].filters_digest is not None
    assert parse_folder("window=20261101T000000_20261102T000000,filters=0123456789abcdef") is not None
    for name in ("window=../x", "window=20261102T000000_20261101T000000", "_gx_static", "window=2026_2026"):
        assert parse_folder(name) is None


def test_the_setting(monkeypatch):
    monkeypatch.delenv("AIRFLOW__ERPSYNC__STAGING_RETENTION_DAYS", raising=False)
    assert keep_days() == 90
    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_RETENTION_DAYS", "0")
    assert keep_days() == 0
    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_RETENTION_DAYS", "-1")
    with pytest.raises(ValueError, match="staging_retention_days"):
        keep_days()


def test_pruning_on_object_storage(tmp_path):
    """Through fsspec, as on S3: no local paths, modification times from the store's listing."""
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    root = ObjectStoragePath("memory://retention-bucket/staging")
    now = pendulum.now("Asia/Shanghai").start_of("day")
    old = RunFiles(root, DAG, Window(now.subtract(days=101), now.subtract(days=100)))
    write_json({"orders": 1}, old.extract_summary)
    recent = RunFiles(root, DAG, Window(now.subtract(days=2), now.subtract(days=1)))
    write_json({"orders": 1}, recent.extract_summary)
    # memory files are dated now: as far as the store knows, both were written a moment ago
    assert prune(root, DAG, 90, now) == []
    assert prune(root, DAG, 90, now + timedelta(days=2)) == [old.dir.name]
    assert not old.dir.exists() and recent.extract_summary.exists()
