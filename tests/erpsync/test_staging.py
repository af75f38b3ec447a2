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
