"""Validate throughput, fixed cost and memory, on generated windows staged the way extract stages them.

    .venv/bin/python scripts/bench_validate.py                          # 2,000 / 20,000 / 100,000 / 200,000 orders
    .venv/bin/python scripts/bench_validate.py --orders 2000,20000       # other sizes
    .venv/bin/python scripts/bench_validate.py --orders 100000 --profile # where the time goes (stderr)

For each size the window is staged first: the WDT data set's stock-outs (``emulators/dataset.py``,
defects included: 1 in 40 has a line of zero quantity, which validate quarantines) copied with fresh
ids and numbers, made staged rows by extract's ``stage_rows`` and written by extract's own Parquet
writer (its row groups of 10,000 rows). Then a fresh Python process runs ``validate`` alone and
reports the seconds of the call, orders/s, and its peak RSS (``getrusage``: the whole process, with
what a task process has loaded before any step: Airflow, its plugins, the scheme), next to the RSS it
had before the call. The fixed cost
is a run of 10 orders: importing ``erpsync.steps.validate`` plus the call (GX, when a step imports it
inside the call, is in the call). Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.windows import Window, parse_datetime

SCHEME_FILE = INCLUDE_DIR / "schemes" / "sales_outstock.yaml"
WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
FIXED_ORDERS = 10


def _files(root: Path) -> Any:
    from airflow.sdk import ObjectStoragePath

    from erpsync.staging import RunFiles

    return RunFiles(ObjectStoragePath(root.as_uri()), load_scheme(SCHEME_FILE).dag_id, WINDOW)


def stage(files: Any, orders: int) -> int:
    """Write the window's orders.parquet and lines.parquet as extract does; return the lines written."""
    from emulators.dataset import build_dataset
    from erpsync.staging import put_file
    from erpsync.steps.extract import _ParquetStream, stage_rows

    api = load_scheme(SCHEME_FILE).source.api
    templates = build_dataset(seed=1, orders=600, start=date(2026, 11, 1), days=1).orders
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-stage-") as tmp:
        order_stream = _ParquetStream(list(api.order_fields), Path(tmp) / "orders.parquet")
        line_stream = _ParquetStream(
            [api.order_key, *[f for f in api.line_fields if f != api.order_key]], Path(tmp) / "lines.parquet"
        )
        line_number = 0
        for n in range(orders):
            template = templates[n % len(templates)]
            order_id, number = str(300_000_000 + n), f"CK2026{n:09d}"
            lines = []
            for line in template[api.line_list_key]:
                line_number += 1
                lines.append({**line, api.order_key: order_id, api.line_key: str(700_000_000 + line_number)})
            order = {
                **template,
                api.order_key: order_id,
                api.number_key: number,
                "stockout_no": number,
                api.line_list_key: lines,
            }
            row, line_rows = stage_rows(order, api)
            order_stream.add(row)
            for line_row in line_rows:
                line_stream.add(line_row)
        order_stream.close()
        line_stream.close()
        put_file(Path(tmp) / "orders.parquet", files.orders)
        put_file(Path(tmp) / "lines.parquet", files.lines)
    return line_number


def _mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(root: Path, profile: bool) -> None:
    """Run validate alone in this (fresh) process and print its figures as one JSON line."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    from erpsync.run import Run  # what the task has imported before it calls the step

    # Airflow's plugins, which a task process has loaded before the step runs (its listeners); here the
    # staging path's first open would load them, 0.8 s and 140 MB that are no part of the step
    get_hook_lineage_collector()
    scheme = load_scheme(SCHEME_FILE)
    run = Run(scheme, WINDOW, _files(root), run_id="bench")
    began = time.perf_counter()
    from erpsync.steps.validate import validate

    imported = time.perf_counter() - began
    before = _mb("VmRSS")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    began = time.perf_counter()
    result = validate(run)
    seconds = time.perf_counter() - began
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    figures = {
        "import_seconds": imported,
        "seconds": seconds,
        "orders": result.orders,
        "lines": result.lines,
        "quarantined": result.quarantined_orders,
        "rss_before_mb": before,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _measure(size: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-validate-") as tmp:
        began = time.perf_counter()
        stage(_files(Path(tmp)), size)
        staged = time.perf_counter() - began
        command = [sys.executable, str(Path(__file__).resolve()), "--child", tmp]
        if profile:
            command.append("--profile")
        run = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "staged_seconds": staged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="2000,20000,100000,200000", help="sizes, separated by commas")
    parser.add_argument("--repeat-fixed", type=int, default=3, help="runs of 10 orders for the fixed cost (best kept)")
    parser.add_argument("--profile", action="store_true", help="cProfile each validate call; the top 30 go to stderr")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.profile)
        return

    fixed = min(
        (_measure(FIXED_ORDERS, False) for _ in range(max(1, args.repeat_fixed))),
        key=lambda f: f["import_seconds"] + f["seconds"],
    )
    print(f"validate, suites of {SCHEME_FILE.name}, one fresh process per run")
    print(
        f"fixed cost ({FIXED_ORDERS} orders, best of {args.repeat_fixed}): {fixed['import_seconds'] + fixed['seconds']:.2f} s "
        f"(import {fixed['import_seconds']:.2f} s + call {fixed['seconds']:.2f} s), peak RSS {fixed['peak_mb']:.0f} MB"
    )
    print(
        f"{'orders':>9} {'lines':>9} {'staged in':>9} {'seconds':>8} {'orders/s':>9} {'quarantined':>11} "
        f"{'RSS before':>10} {'peak RSS':>9}"
    )
    for size in [int(n) for n in args.orders.split(",")]:
        f = _measure(size, args.profile)
        if f["orders"] != size:
            print(f"  warning: {size} orders staged, validate counted {f['orders']}")
        print(
            f"{size:>9} {f['lines']:>9} {f['staged_seconds']:>8.1f}s {f['seconds']:>7.2f}s "
            f"{size / f['seconds']:>9.0f} {f['quarantined']:>11} {f['rss_before_mb']:>8.0f}MB {f['peak_mb']:>7.0f}MB"
        )


if __name__ == "__main__":
    main()
