"""Transform throughput and memory: the seed mapping on generated staged windows.

    .venv/bin/python scripts/bench_transform.py [--orders 100000] [--lines 3] [--chunk-rows 1000]
    .venv/bin/python scripts/bench_transform.py --orders 10000,100000,300000   # memory growth per size
    .venv/bin/python scripts/bench_transform.py --orders 20000 --profile        # where the time goes

For each size the window is staged first the way the extract step leaves it (``orders.parquet`` and
``lines.parquet``: every field as text plus the ``extra`` JSON column, extract's row groups, lines
right after their order) with an empty ``quarantine.parquet``; the orders are copies of the WDT
emulator's completed stock-outs with fresh ids and numbers. Then a fresh Python process runs
``transform`` alone on it and reports seconds, orders/s, lines/s and its peak RSS, next to the RSS
it had before the transform began (libraries loaded, mapping compiled): with chunks the growth must
stay flat as the window grows. What still grows is the Parquet footers, which the reader decodes
whole: about 1 KB per column chunk (row groups x columns, shown as "footer chunks"); extract writes
row groups of 10,000 rows so that this stays ~11 MB per million orders of 112 columns.
Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.steps.extract import _ParquetStream
from erpsync.steps.validate import QUARANTINE_COLUMNS
from erpsync.windows import Window, parse_datetime

REPO = Path(__file__).resolve().parents[1]
# read by great_expectations when it is imported; none of the imports above import it
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
SCHEME_FILE = INCLUDE_DIR / "schemes" / "sales_outstock.yaml"
WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
BLOCK_ORDERS = 20_000  # orders generated and written per block: generation memory stays small too


def _templates(api, lines_per_order: int) -> tuple[pa.Table, pa.Table]:
    """Completed, defect-free stock-outs of the WDT emulator, staged as extract stages them, each with
    exactly ``lines_per_order`` lines (borrowed from the next orders where it has fewer)."""
    from emulators.dataset import build_dataset
    from erpsync.steps.extract import EXTRA_COLUMN, stage_rows

    order_fields = list(api.order_fields)
    line_fields = [api.order_key, *[f for f in api.line_fields if f != api.order_key]]

    def staged(row: dict, fields: list[str]) -> dict:  # the known fields, then the others as ``extra``
        extra = {k: v for k, v in row.items() if k not in fields}
        return {
            **{f: row.get(f) for f in fields},
            EXTRA_COLUMN: json.dumps(extra, ensure_ascii=False) if extra else None,
        }

    dataset = build_dataset(seed=1, orders=600, start=date(2026, 11, 1), days=1)
    picked = [o for o in dataset.orders if o["status"] == 110 and o["order_no"] not in dataset.defects][:256]
    pool = [line for o in picked for line in o[api.line_list_key]]
    orders, lines = [], []
    for index, order in enumerate(picked):
        own = order[api.line_list_key]
        borrowed = [pool[(index * 7 + n) % len(pool)] for n in range(max(0, lines_per_order - len(own)))]
        row, line_rows = stage_rows({**order, api.line_list_key: [*own, *borrowed][:lines_per_order]}, api)
        orders.append(staged(row, order_fields))
        lines += [staged(line, line_fields) for line in line_rows]
    as_text = lambda names: pa.schema([(n, pa.string()) for n in [*names, EXTRA_COLUMN]])  # noqa: E731
    return pa.Table.from_pylist(orders, schema=as_text(order_fields)), pa.Table.from_pylist(
        lines, schema=as_text(line_fields)
    )


def _numbered(start: int, count: int, prefix: str = "", width: int = 0) -> pa.Array:
    import numpy as np

    numbers = np.char.zfill(np.arange(start, start + count).astype(str), width)
    return pa.array(np.char.add(prefix, numbers) if prefix else numbers, type=pa.string())


def stage(files, orders: int, lines_per_order: int) -> None:
    """Write the window's orders.parquet, lines.parquet and an empty quarantine.parquet."""
    import numpy as np
    import pandas as pd

    from erpsync.staging import put_file, write_parquet

    source = load_scheme(SCHEME_FILE).source
    keys = source.keys
    template_orders, template_lines = _templates(source.api, lines_per_order)
    count = template_orders.num_rows
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-stage-") as tmp:
        orders_writer = pq.ParquetWriter(Path(tmp) / "orders.parquet", template_orders.schema)
        lines_writer = pq.ParquetWriter(Path(tmp) / "lines.parquet", template_lines.schema)
        for first in range(0, orders, BLOCK_ORDERS):
            size = min(BLOCK_ORDERS, orders - first)
            which = np.arange(first, first + size) % count
            block = template_orders.take(pa.array(which))
            ids = _numbered(300_000_000 + first, size)
            numbers = _numbered(first, size, "CK20261101", width=6)
            for name, values in ((keys.order, ids), (keys.number, numbers), ("stockout_no", numbers)):
                block = block.set_column(block.schema.get_field_index(name), name, values)
            line_rows = (which[:, None] * lines_per_order + np.arange(lines_per_order)).ravel()
            line_block = template_lines.take(pa.array(line_rows))
            line_block = line_block.set_column(
                line_block.schema.get_field_index(keys.order),
                keys.order,
                ids.take(pa.array(np.repeat(np.arange(size), lines_per_order))),
            )
            line_block = line_block.set_column(
                line_block.schema.get_field_index(keys.line),
                keys.line,
                _numbered(700_000_000 + first * lines_per_order, size * lines_per_order),
            )
            orders_writer.write_table(block, row_group_size=_ParquetStream.GROUP_ROWS)
            lines_writer.write_table(line_block, row_group_size=_ParquetStream.GROUP_ROWS)
        orders_writer.close()
        lines_writer.close()
        put_file(Path(tmp) / "orders.parquet", files.orders)
        put_file(Path(tmp) / "lines.parquet", files.lines)
    write_parquet(pd.DataFrame(columns=QUARANTINE_COLUMNS).astype("string"), files.quarantine)


def _files(root: Path):
    from airflow.sdk import ObjectStoragePath

    from erpsync.staging import RunFiles

    return RunFiles(ObjectStoragePath(root.as_uri()), load_scheme(SCHEME_FILE).dag_id, WINDOW)


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Restart the kernel's peak-RSS count (Linux), so the peak is the transform's, not the imports'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(root: Path, chunk_rows: int | None, profile: bool) -> None:
    """Run the transform alone in this (fresh) process and print its figures as one JSON line."""
    import msgspec  # noqa: F401  the libraries the transform imports: their memory is not the window's
    import pandas  # noqa: F401

    from erpsync.mapping.compile import compile_mapping
    from erpsync.run import Run
    from erpsync.steps.transform import transform

    scheme = load_scheme(SCHEME_FILE)
    mapping = compile_mapping(scheme)
    files = _files(root)
    options = {} if chunk_rows is None else {"chunk_rows": chunk_rows}
    before = _status_mb("VmRSS") or _peak_mb()
    if not _reset_peak():
        print("warning: cannot reset the peak RSS count; the peak shown may be the imports'", file=sys.stderr)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    began = time.perf_counter()
    result = transform(Run(scheme, WINDOW, files, compiled=mapping), **options)
    seconds = time.perf_counter() - began
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bills": result.bills,
                "unmapped": result.unmapped,
                "skipped": result.skipped_quarantined,
                "rss_before_mb": before,
                "peak_mb": _peak_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="100000", help="one size, or several separated by commas")
    parser.add_argument("--lines", type=int, default=3, help="lines per order")
    parser.add_argument("--chunk-rows", type=int, default=None, help="orders per chunk (default: the transform's)")
    parser.add_argument("--profile", action="store_true", help="cProfile the transform; the top 25 go to stderr")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk_rows, args.profile)
        return

    sizes = [int(n) for n in args.orders.split(",")]
    print(
        f"transform, seed mapping ({SCHEME_FILE.name}), {args.lines} lines per order, "
        f"chunk {args.chunk_rows or 'default'}, one fresh process per size"
    )
    print(
        f"{'orders':>9} {'staged in':>9} {'seconds':>8} {'orders/s':>9} {'lines/s':>9} "
        f"{'RSS before':>10} {'peak RSS':>9} {'growth':>8} {'footer chunks':>14}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="erpsync-bench-transform-") as tmp:
            began = time.perf_counter()
            stage(_files(Path(tmp)), size, args.lines)
            staged = time.perf_counter() - began
            files = _files(Path(tmp))
            chunks = 0
            for path in (files.orders, files.lines):
                footer = pq.read_metadata(path.path)
                chunks += footer.num_row_groups * footer.num_columns
            command = [sys.executable, str(Path(__file__).resolve()), "--child", tmp]
            if args.chunk_rows is not None:
                command += ["--chunk-rows", str(args.chunk_rows)]
            if args.profile:
                command.append("--profile")
            run = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
            figures = json.loads(run.stdout.strip().splitlines()[-1])
        if figures["bills"] + figures["unmapped"] + figures["skipped"] != size:
            print(f"  warning: {size} orders staged, the transform accounted for {figures}")
        seconds = figures["seconds"]
        print(
            f"{size:>9} {staged:>8.1f}s {seconds:>7.2f}s {size / seconds:>9.0f} {size * args.lines / seconds:>9.0f} "
            f"{figures['rss_before_mb']:>8.0f}MB {figures['peak_mb']:>7.0f}MB "
            f"{figures['peak_mb'] - figures['rss_before_mb']:>6.0f}MB {chunks:>14}"
        )


if __name__ == "__main__":
    main()
