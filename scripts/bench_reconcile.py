"""Time the reconciliation (对账) of one day against both emulators at realistic limits, and print it.

    .venv/bin/python scripts/bench_reconcile.py [--scheme sales_outstock] [--orders 20000]

The day's documents are loaded into Kingdee first (untimed: emulators at full speed, the pipeline's
steps in a child process), then both emulators are started again as processes on the same data at
realistic limits (WDT ``--throttle-per-minute 600 --latency-ms 80``, the client's own limit to match;
Kingdee ``--latency-ms 50 --per-bill-ms 10 --max-concurrent 4``) and the day is reconciled here, the
client alone in this process as against real servers: the seconds, documents per second, the calls
each side took, the bound WDT's call limit sets (pages / 10 per second) and the reconciling process's
peak RSS are printed, with the day's differences (the data set's bad orders: missing, with their reason).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack, nullcontext
from datetime import date, timedelta
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from bench_pipeline import KINGDEE, WDT  # scripts/ is on the path of a script run
from demo import emulator
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.reconcile import reconcile
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, Scheme, load_schemes
from erpsync.staging import StoragePath
from erpsync.steps.extract import extract
from erpsync.steps.load import load
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.wdt.connector import WdtReader
from erpsync.windows import Window, parse_datetime

DAY = date(2026, 10, 1)
WDT_LIMITS = ["--latency-ms", "80", "--throttle-per-minute", "600"]
KINGDEE_LIMITS = ["--latency-ms", "50", "--per-bill-ms", "10", "--max-concurrent", "4"]


def _flags(identity: Mapping[str, str]) -> list[str]:
    """An identity (``WDT``, ``KINGDEE``) as the emulator's command line takes it."""
    return [item for key, value in identity.items() for item in (f"--{key.replace('_', '-')}", value)]


def _emulators(stack: ExitStack, tmp: Path, orders: int, limited: bool) -> tuple[str, str]:
    """Both emulators as processes on the one day's data (Kingdee's kept in ``tmp``); their URLs."""
    wdt = [*_flags(WDT), "--seed", "1", "--orders", str(orders), "--start", DAY.isoformat(), "--days", "1"]
    kingdee = [*_flags(KINGDEE), "--data-dir", str(tmp / "kingdee"), "--seed", "1"]
    return (
        stack.enter_context(emulator("wdt", tmp, wdt + (WDT_LIMITS if limited else []))),
        stack.enter_context(emulator("kingdee", tmp, kingdee + (KINGDEE_LIMITS if limited else []))),
    )


def _load(scheme: Scheme, staging: StoragePath, wdt: str, kingdee: str) -> None:
    """The days loaded by the pipeline's steps (run in a child: its memory is not the reconciliation's)."""
    began = time.perf_counter()
    window = Window.of(parse_datetime(DAY.isoformat(), "s"), parse_datetime((DAY + timedelta(days=9)).isoformat(), "e"))
    run = Run.open(scheme, window, staging, run_id="bench")
    extract(run, WdtReader(WdtClient(WdtConfig(url=wdt, min_interval_seconds=0, **WDT)), scheme.source))
    validate(run)
    transform(run)
    loaded = load(run, KingdeeTarget(K3CloudClient(K3CloudConfig(server_url=kingdee, **KINGDEE))))
    print(f"loaded first (untimed, {time.perf_counter() - began:.0f} s): {loaded}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="sales_outstock", help="the scheme's name (include/schemes/<name>.yaml)")
    parser.add_argument("--orders", type=int, default=20000, help="documents generated on the one day")
    args = parser.parse_args()
    scheme = {s.name: s for s in load_schemes(INCLUDE_DIR)}[args.scheme]

    with tempfile.TemporaryDirectory(prefix="erpsync-bench-") as tmp:
        staging = ObjectStoragePath(Path(tmp).as_uri()) / "staging"
        with ExitStack() as fast:
            child = multiprocessing.get_context("fork").Process(
                target=_load, args=(scheme, staging, *_emulators(fast, Path(tmp), args.orders, limited=False))
            )
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit(f"the load failed (exit {child.exitcode})")

        with ExitStack() as slow:
            wdt, kingdee = _emulators(slow, Path(tmp), args.orders, limited=True)
            rate = str(Path(tmp) / "rate.db")
            wdt_client = WdtClient(WdtConfig(url=wdt, min_interval_seconds=0.1, rate_limit_url=rate, **WDT))
            kingdee_client = K3CloudClient(K3CloudConfig(server_url=kingdee, **KINGDEE))
            readers: list[WdtReader] = []

            def open_reader(source):
                readers.append(WdtReader(wdt_client, source))
                return nullcontext(readers[-1])

            began = time.perf_counter()
            done = reconcile(scheme, [DAY], staging, open_reader, KingdeeTarget(kingdee_client))
            seconds = time.perf_counter() - began
        result = done.results[0]
        documents = result.totals["wdt"]["documents"]
        pages = sum(r.pages for r in readers)
        print(
            f"{args.scheme}: reconciled {DAY} in {seconds:.1f} s: {documents} WDT documents "
            f"({int(documents) / seconds:.0f}/s), {result.totals['kingdee']['bills']} Kingdee bills"
        )
        print(
            f"  WDT: {sum(r.calls for r in readers)} calls, {pages} pages (bound at 10 calls/s: {pages / 10:.1f} s); "
            f"Kingdee: {len(kingdee_client.recorder.take()) if kingdee_client.recorder else '?'} calls"
        )
        print(f"  differences: {result.counts}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the reconciling process (the emulators run apart): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
