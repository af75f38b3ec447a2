"""Order search and the report pages over a year of hourly windows: figures, no pass/fail.

    .venv/bin/python scripts/bench_search.py                      # 365 days x 24 windows x 3 DAGs: 26,280 windows
    .venv/bin/python scripts/bench_search.py --days 30            # a month (2,160 windows)
    .venv/bin/python scripts/bench_search.py --staging /tmp/bench --keep   # keep the staged windows, reuse them
    .venv/bin/python scripts/bench_search.py --no-keys            # windows staged before key files existed

Synthesises the staging root of the three schemes of include/schemes (one folder per hourly window,
``--orders`` orders of two lines each), then asks the erpsync UI app in-process (Airflow's auth
manager, a throw-away metadata database) for each report page and prints its time: the overview, a
DAG's page (the default 48 windows, and the 720 of the longest trend), the order search for a number
in the middle of the year, a Kingdee bill number, and a number that is nowhere, and the API catalog
over the last 7 days of windows; then what each load asks of its DAG's windows
(``preconditions.completed_windows``). Each is asked ``--repeat`` times; the first (cold: the app's
first request) and the best are printed. A year takes about 16 minutes to stage on two cores the
first time (the key files are built one window at a time); ``--keep`` reuses it.

Writing 26,000 windows the way the steps do would take hours, so the wide files (``orders.parquet``
with every field of the API definition, ``lines.parquet``, the load report…) are copies of a few
templates per DAG, and only a handful of "needle" windows per DAG have orders of their own in them.
The key files hold numbers of their own in every window (``erpsync.keys.window_keys`` over generated
narrow tables: what the index folds must not repeat), and each month is folded as the loads fold it.
With ``--no-keys`` no window has a key file: search reads the wide files, as it did before them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
START = date(2025, 11, 1)
NEEDLES = 4  # windows per DAG with orders of their own, spread over the year
QUARANTINE_COLUMNS = ["order_id", "order_no", "line_id", "suite", "rule", "check", "column", "value"]
UNMAPPED_COLUMNS = ["order_id", "order_no", "field", "message"]
TEMPLATES = 8  # wide-file templates per DAG


def _airflow_home() -> Path:
    """A throw-away Airflow home with a migrated metadata database (the DAG page lists recent runs)."""
    home = Path(tempfile.mkdtemp(prefix="erpsync-bench-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, cwd=REPO)
    return home


# -- synthetic windows -----------------------------------------------------------------------------


def _schemes() -> list[Any]:
    from erpsync.scheme import INCLUDE_DIR, load_schemes

    return sorted(load_schemes(INCLUDE_DIR), key=lambda s: s.dag_id)


def _prefix(column: str) -> str:
    """A number's letters by its column, so numbers of different columns never collide."""
    return "".join(p[0] for p in column.split("_")).upper()[:3] or "N"


def _order_number(column: str, dag: int, window: int, order: int) -> str:
    return f"{_prefix(column)}{dag}{window:05d}{order:04d}"


def _orders(scheme: Any, dag: int, window: int, orders: int, wide: bool) -> tuple[pa.Table, pa.Table, list[str]]:
    """A window's orders and lines: every field of the API definition (``wide``) or the search's only."""
    api = scheme.source.api
    search = api.search
    searched = {api.order_key, api.number_key, *search.numbers, *search.number_lists}
    columns = [*api.order_fields, "extra"] if wide else [c for c in api.order_fields if c in searched]
    ids = [str(10_000_000 * (dag + 1) + window * 10_000 + j) for j in range(orders)]
    data: dict[str, list[str | None]] = {}
    for column in columns:
        if column == api.order_key:
            data[column] = list(ids)
        elif column == api.number_key or column in search.numbers:
            data[column] = [_order_number(column, dag, window, j) for j in range(orders)]
        elif column in search.number_lists:
            data[column] = [
                f"{_order_number(column, dag, window, j)},{_order_number(column, dag, window, j)}X"
                for j in range(orders)
            ]
        else:
            data[column] = [f"{column}-{j % 7}" for j in range(orders)]
    line_columns = [api.order_key, *[c for c in api.line_fields if c != api.order_key]]
    if not wide:
        line_columns = [api.order_key, *[c for c in search.line_numbers if c in api.line_fields]]
    lines: dict[str, list[str | None]] = {c: [] for c in line_columns}
    for j, order_id in enumerate(ids):
        for k in range(2):
            for column in line_columns:
                if column == api.order_key:
                    lines[column].append(order_id)
                elif column in search.line_numbers:
                    lines[column].append(f"{_order_number(column, dag, window, j)}{k}")
                elif column == api.line_key:
                    lines[column].append(str(int(order_id) * 10 + k))
                else:
                    lines[column].append(f"{column}-{k}")
    return pa.table(data), pa.table(lines), ids


def _outcome(j: int) -> str:
    return {7: "rejected", 13: "held", 21: "quarantined", 33: "existing"}.get(j % 50, "created")


def _report(scheme: Any, orders: pa.Table, dag: int, window: int) -> pa.Table:
    from erpsync.outcomes import REPORT_COLUMNS

    api = scheme.source.api
    ids = orders.column(api.order_key).to_pylist()
    numbers = orders.column(api.number_key).to_pylist()
    rows = []
    for j, (order_id, number) in enumerate(zip(ids, numbers, strict=True)):
        outcome = _outcome(j)
        made = outcome in ("created", "existing")
        rows.append(
            {
                "bill_no": None if outcome == "quarantined" else number,
                "order_id": order_id,
                "order_no": number,
                "outcome": outcome,
                "kingdee_id": str(100000 + j) if made else None,
                "kingdee_number": _order_number("kingdee_number", dag, window, j) if made else None,
                "field": "FMaterialID" if outcome in ("rejected", "held") else None,
                "message": "no such material" if outcome in ("rejected", "held") else None,
                "at": "2026-01-01T00:00:00+00:00",
            }
        )
    schema = pa.schema([(c, pa.string()) for c in REPORT_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _template(scheme: Any, dag: int, index: int, orders: int, folder: Path) -> None:
    """One window's files as the steps leave them (``index``: whose numbers they hold)."""
    table, lines, ids = _orders(scheme, dag, index, orders, wide=True)
    _write(table, folder / "orders.parquet")
    _write(lines, folder / "lines.parquet")
    numbers = table.column(scheme.source.api.number_key).to_pylist()
    bad = [(ids[j], numbers[j]) for j in range(orders) if _outcome(j) == "quarantined"]
    quarantine: dict[str, list[str | None]] = {c: [None] * len(bad) for c in QUARANTINE_COLUMNS}
    quarantine.update(
        order_id=[b[0] for b in bad],
        order_no=[b[1] for b in bad],
        suite=["lines"] * len(bad),
        check=["goods_count > 0"] * len(bad),
        column=["goods_count"] * len(bad),
        value=["0.0000"] * len(bad),
    )
    _write(pa.table({c: pa.array(v, pa.string()) for c, v in quarantine.items()}), folder / "quarantine.parquet")
    _write(pa.table({c: pa.array([], pa.string()) for c in UNMAPPED_COLUMNS}), folder / "unmapped.parquet")
    _write(_report(scheme, table, dag, index), folder / "load_report" / "part-000000.parquet")
    checked = {"orders": orders, "lines": 2 * orders, "quarantined_orders": len(bad)}
    (folder / "quality").mkdir(parents=True, exist_ok=True)
    (folder / "quality" / "summary.json").write_text(json.dumps(checked))
    extract = {"orders": orders, "lines": 2 * orders, "calls": 1 + orders // 100, "pages": 1, "seconds": 1.5}
    (folder / "extract_summary.json").write_text(json.dumps({**extract, "filters": {}}))
    (folder / "complete.json").write_text(json.dumps({"completed_at": "2026-01-01T00:00:00+08:00"}))
    calls = [
        ("extract", "wdt", scheme.source.api.method, orders // 2),
        ("load", "kingdee", "BatchSave", orders // 2),
        ("load", "kingdee", "ExecuteBillQuery", 0),
    ]
    for task, system, method, rows in calls:
        frame = {"system": [system] * 2, "method": [method] * 2, "started": ["2026-01-01T00:00:01+08:00"] * 2}
        frame.update(ms=["120.0", "80.0"], outcome=["ok", "ok"], detail=[None, None], rows=[str(rows)] * 2)
        _write(pa.table(frame), folder / "calls" / f"{task}-{method}.parquet")
    (folder / "finished.json").write_text(json.dumps({"reported": [], "known": []}))


def _folder_name(start: datetime) -> str:
    end = start + timedelta(hours=1)
    return f"window={start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}"


def _needles(windows: int) -> list[int]:
    return [windows * (k + 1) // (NEEDLES + 1) for k in range(NEEDLES)]


def _stage_dag(args: tuple[str, int, int, int, int, bool]) -> int:
    """Stage windows ``[first, last)`` of DAG number ``dag``; returns how many."""
    root, dag, first, last, orders, keys = args
    scheme = _schemes()[dag]
    base = Path(root) / scheme.dag_id
    templates = base / "_templates"
    files = sorted(p.relative_to(templates / "0") for p in (templates / "0").rglob("*") if p.is_file())
    for index in range(first, last):
        folder = base / _folder_name(datetime.combine(START, datetime.min.time()) + timedelta(hours=index))
        needle = templates / f"needle-{index}"
        source = needle if needle.exists() else templates / str(index % TEMPLATES)
        for name in files:
            if not (folder / name).exists():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / name, folder / name)
        if keys and not (folder / "keys.parquet").exists():
            _write_keys(scheme, dag, index, orders, folder)
    return last - first


def _write_keys(scheme: Any, dag: int, index: int, orders: int, folder: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    from erpsync.keys import SearchColumns, window_keys, write_keys

    table, lines, _ = _orders(scheme, dag, index, orders, wide=False)
    report = _report(scheme, table, dag, index)
    keys = window_keys(table, lines, report, SearchColumns.of(scheme.source.api))
    outcomes: dict[str, int] = {}
    for outcome in report.column("outcome").to_pylist():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    write_keys(keys, outcomes, ObjectStoragePath(folder.parent.as_uri()) / folder.name)


def stage(root: Path, days: int, orders: int, keys: bool) -> float:
    """Write the synthetic windows under ``root`` (what is there is kept); returns the seconds it took."""
    began = time.perf_counter()
    windows = days * 24
    schemes = _schemes()
    for dag, scheme in enumerate(schemes):
        templates = root / scheme.dag_id / "_templates"
        for t in range(TEMPLATES):
            if not (templates / str(t) / "orders.parquet").exists():
                _template(scheme, dag, 90_000 + t, orders, templates / str(t))
        for index in _needles(windows):
            if not (templates / f"needle-{index}" / "orders.parquet").exists():
                _template(scheme, dag, index, orders, templates / f"needle-{index}")
    step = 500
    jobs = [
        (str(root), dag, first, min(first + step, windows), orders, keys)
        for dag in range(len(schemes))
        for first in range(0, windows, step)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        written = sum(pool.map(_stage_dag, jobs))
    for scheme in schemes:
        shutil.rmtree(root / scheme.dag_id / "_templates")
    print(f"staged {written:,} windows in {time.perf_counter() - began:.1f} s")
    return time.perf_counter() - began


def fold_all(root: Path) -> None:
    """Fold every DAG's key files into its index, as the loads do every so many windows."""
    from airflow.sdk import ObjectStoragePath

    from erpsync.keys import fold

    began = time.perf_counter()
    folded = sum(fold(ObjectStoragePath(root.as_uri()) / scheme.dag_id) for scheme in _schemes())
    print(f"folded {folded:,} windows' key files into the DAGs' indexes in {time.perf_counter() - began:.1f} s")


# -- the pages -------------------------------------------------------------------------------------


@contextmanager
def _client(root: Path) -> Iterator[Any]:
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user
    from airflow.sdk import ObjectStoragePath
    from fastapi.testclient import TestClient

    from erpsync.ui.app import create_app

    init_auth_manager()
    app = create_app(root=lambda: ObjectStoragePath(root.as_uri()))
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="bench", role="admin")
    yield TestClient(app)


def _time(ask: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, answer = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        answer = ask()
        times.append(time.perf_counter() - began)
    return times[0], min(times), answer


def _days_since(days: int) -> int:
    """Days from the last synthetic window to today (the catalog counts back from now)."""
    return max((date.today() - (START + timedelta(days=days))).days, 0)


def pages(root: Path, days: int, orders: int, repeat: int) -> None:
    schemes = _schemes()
    dag, scheme = 0, schemes[0]
    needle = _needles(days * 24)[NEEDLES // 2]
    number = _order_number(scheme.source.api.number_key, dag, needle, 3)
    bill = _order_number("kingdee_number", dag, needle, 3)
    asks = {
        "overview /": "/",
        f"DAG page /dags/{scheme.dag_id}": f"/dags/{scheme.dag_id}",
        "trend of 720 windows ?n=720": f"/dags/{scheme.dag_id}?n=720",
        f"search {number}": f"/search?q={number}",
        f"search Kingdee bill {bill}": f"/search?q={bill}",
        "search a number that is nowhere": "/search?q=NOWHERE0000001",
        "API catalog /apis (the last 7 days of windows)": f"/apis?days={min(_days_since(days) + 7, 366)}",
    }
    with _client(root) as client:
        print(f"{'page':<58} {'first':>8} {'best':>8}")
        for label, url in asks.items():
            first, best, response = _time(partial(client.get, url), repeat)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}\n{response.text[:2000]}")
            if url.startswith("/search?q=") and "NOWHERE" not in url and "1 个订单 order(s)" not in response.text:
                raise SystemExit(f"{url}: the order was not found")
            print(f"{label:<58} {first * 1000:>6.0f}ms {best * 1000:>6.0f}ms")


def steps(root: Path, days: int, repeat: int) -> None:
    """What a load asks of its DAG's windows: the whole windows overlapping its own that are complete
    (``preconditions.completed_windows``; ``policy.known_problems`` lists them the same way)."""
    from airflow.sdk import ObjectStoragePath

    from erpsync.preconditions import completed_windows
    from erpsync.windows import Window

    scheme = _schemes()[0]
    start = datetime.combine(START, datetime.min.time()) + timedelta(hours=days * 12)
    window = Window.of(start, start + timedelta(hours=1), scheme.settings.timezone)
    staging = ObjectStoragePath(root.as_uri())
    first, best, done = _time(partial(completed_windows, staging, scheme.dag_id, window), repeat)
    assert done == [window], done
    label = f"a load's completed_windows over {days * 24:,} windows"
    print(f"{label:<58} {first * 1000:>6.0f}ms {best * 1000:>6.0f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="hourly windows of this many days, per DAG")
    parser.add_argument("--orders", type=int, default=50, help="orders per window")
    parser.add_argument("--staging", type=Path, help="the staging root to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the staging root (reused when run again)")
    parser.add_argument("--no-keys", action="store_true", help="no key files: windows staged before them")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = _airflow_home()
    root = args.staging or Path(tempfile.mkdtemp(prefix="erpsync-bench-staging-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"{args.days} days x 24 hourly windows x 3 DAGs, {args.orders} orders each, under {root}")
        stage(root, args.days, args.orders, keys=not args.no_keys)
        if not args.no_keys:
            fold_all(root)
        pages(root, args.days, args.orders, args.repeat)
        steps(root, args.days, args.repeat)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
