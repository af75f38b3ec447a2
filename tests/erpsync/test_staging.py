"""Per-window files: atomic writes, and a rerun replaces what the last run left."""

from __future__ import annotations

import pandas as pd
from airflow.sdk import ObjectStoragePath

from erpsync.staging import RunFiles, read_parquet, replace_tree, write_parquet
from erpsync.windows import Window, parse_datetime

WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))


def test_paths_are_keyed_by_dag_window_and_filters(tmp_path):
    root = ObjectStoragePath(tmp_path.as_uri())
    files = RunFiles(root, "dag_a", WINDOW)
    assert str(files.orders).endswith("dag_a/window=20261101T000000_20261102T000000/orders.parquet")
    assert RunFiles(root, "dag_a", WINDOW, {"shop_no": "S1"}).dir != files.dir


def test_a_rewrite_replaces_the_file_and_leaves_no_temporary(tmp_path):
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), "dag_a", WINDOW)
    write_parquet(pd.DataFrame({"a": ["1", "2"]}, dtype="string"), files.orders)
    write_parquet(pd.DataFrame({"a": ["3"]}, dtype="string"), files.orders)
    assert read_parquet(files.orders)["a"].tolist() == ["3"]
    assert [p.name for p in files.dir.iterdir()] == ["orders.parquet"]


def test_replace_tree_drops_files_of_the_previous_run(tmp_path):
    target = ObjectStoragePath((tmp_path / "stage").as_uri()) / "docs"
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "validations").mkdir(parents=True)
    (first / "validations" / "old.html").write_text("old")
    (second / "validations").mkdir(parents=True)
    (second / "index.html").write_text("new")
    replace_tree(first, target)
    replace_tree(second, target)
    assert sorted(
        str(p.relative_to(tmp_path / "stage" / "docs")) for p in (tmp_path / "stage" / "docs").rglob("*") if p.is_file()
    ) == ["index.html"]


# -- listing window folders: thousands of them -------------------------------------------------------

ZONES = ("Asia/Shanghai", "UTC", "America/New_York", "Europe/London")
KEYS = (
    "20261101T000000_20261101T010000",
    "20261101T013000_20261101T020000",  # New York's repeated hour
    "20260308T013000_20260308T033000",  # New York's skipped hour
    "20261025T000000_20261026T000000",  # London's long day
    "20261301T000000_20261302T000000",  # no such month
    "20260230T000000_20260301T000000",  # no such day
    "20261102T000000_20261101T000000",  # ends before it starts
)


def test_folder_names_name_the_windows_window_from_key_gives():
    from erpsync.staging import parse_folder
    from erpsync.windows import WindowError

    for zone in ZONES:
        for key in KEYS:
            try:
                expected = Window.from_key(key, zone)
            except WindowError:
                expected = None
            parsed = parse_folder(f"window={key}", zone)
            assert (parsed[0] if parsed else None) == expected, (zone, key)
            if expected is not None:
                assert parsed[0].key == key and parsed[0].timezone == zone


def test_window_folders_overlapping_a_window_are_those_of_the_whole_list(tmp_path):
    import pendulum

    from erpsync.staging import window_folders, window_names
    from erpsync.windows import WindowError

    root = ObjectStoragePath(tmp_path.as_uri())
    zone = "America/New_York"
    start = pendulum.datetime(2026, 10, 31, 20, tz=zone)
    windows = [Window(start.subtract(days=40), start.add(days=10))]  # one long window over all of them
    for hour in range(36):  # over New York's repeated hour
        try:
            windows.append(Window(start.add(hours=hour), start.add(hours=hour + 1)))
        except WindowError:  # 01:00 EDT to 01:00 EST: Python compares the same zone's times by wall clock
            continue
    for n, window in enumerate(windows):
        RunFiles(root, "dag_a", window, {"shop_no": "S1"} if n % 7 == 0 else None, dry_run=n % 11 == 0).dir.mkdir(
            parents=True
        )
    (root / "dag_a" / "_index").mkdir()
    everything = window_folders(root, "dag_a", zone)
    assert len(everything) == len(window_names(root, "dag_a")) == len(windows)
    assert window_names(root, "dag_a") == sorted(window_names(root, "dag_a"), reverse=True)
    probes = [
        Window(start.add(hours=2), start.add(hours=3)),
        Window(start.add(hours=5, minutes=30), start.add(hours=30)).in_timezone("Asia/Shanghai"),
        Window(start.subtract(days=2), start.subtract(days=1)),
        Window(start.add(days=5), start.add(days=6)).in_timezone("UTC"),
    ]
    for probe in probes:
        overlapping = [f for f in everything if f.window.start < probe.end and probe.start < f.window.end]
        assert [f.name for f in window_folders(root, "dag_a", zone, overlapping=probe)] == [f.name for f in overlapping]
        assert overlapping  # the long window overlaps every probe
