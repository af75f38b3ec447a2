"""Time the reconciliation (对账) of one day against both emulators at realistic limits, and print it.

    .venv/bin/python scripts/bench_reconcile.py [--scheme sales_outstock] [--orders 20000]

The day's documents are loaded into Kingdee first (untimed, emulators at full speed), then both
emulators are started again on the same data at realistic limits (WDT ``--throttle-per-minute 600
--latency-ms 80``, the client's own limit to match; Kingdee ``--latency-ms 50 --per-bill-ms 10
--max-concurrent 4``) and the day is reconciled: the seconds, documents per second, the calls each side
took, the bound WDT's call limit sets (pages / 10 per second) and the peak RSS are printed, with the
day's differences (the data set's bad orders: missing, with their reason).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from bench_pipeline import KINGDEE, WDT, serve  # scripts/ is on the path of a script run
from emulators import kingdee, wdt
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.reconcile import reconcile
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, load_schemes
from erpsync.steps.extract import extract
from erpsync.steps.load import load
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.wdt.connector import WdtReader
from erpsync.windows import Window, parse_datetime

DAY = date(2026, 10, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="sales_outstock", help="the scheme's name (include/schemes/<name>.yaml)")
    parser.add_argument("--orders", type=int, default=20000, help="documents generated on the one day")
    args = parser.parse_args()
    scheme = {s.name: s for s in load_schemes(INCLUDE_DIR)}[args.scheme]

    with tempfile.TemporaryDirectory(prefix="erpsync-bench-") as tmp:
        data = Path(tmp) / "kingdee"
        staging = ObjectStoragePath(Path(tmp).as_uri()) / "staging"
        rate = str(Path(tmp) / "rate.db")
        fast_wdt = wdt.make_server("127.0.0.1", 0, **WDT, seed=1, orders=args.orders, start=DAY, days=1)
        fast_kingdee = kingdee.make_server("127.0.0.1", 0, **KINGDEE, data_dir=data, seed=1)
        serve(fast_wdt)
        serve(fast_kingdee)
        began = time.perf_counter()
        window = Window.of(
            parse_datetime(DAY.isoformat(), "s"), parse_datetime((DAY + timedelta(days=9)).isoformat(), "e")
        )
        run = Run.open(scheme, window, staging, run_id="bench")
        extract(run, WdtReader(WdtClient(WdtConfig(url=fast_wdt.url, min_interval_seconds=0, **WDT)), scheme.source))
        validate(run)
        transform(run)
        loaded = load(run, KingdeeTarget(K3CloudClient(K3CloudConfig(server_url=fast_kingdee.url, **KINGDEE))))
        print(f"loaded first (untimed, {time.perf_counter() - began:.0f} s): {loaded}")
        fast_wdt.shutdown()
        fast_kingdee.shutdown()
        fast_kingdee.server_close()

        slow_wdt = wdt.make_server(
            "127.0.0.1", 0, **WDT, seed=1, orders=args.orders, start=DAY, days=1, latency_ms=80, throttle_per_minute=600
        )
        slow_kingdee = kingdee.make_server(
            "127.0.0.1", 0, **KINGDEE, data_dir=data, seed=1, latency_ms=50, per_bill_ms=10, max_concurrent=4
        )
        serve(slow_wdt)
        serve(slow_kingdee)
        wdt_client = WdtClient(WdtConfig(url=slow_wdt.url, min_interval_seconds=0.1, rate_limit_url=rate, **WDT))
        kingdee_client = K3CloudClient(K3CloudConfig(server_url=slow_kingdee.url, **KINGDEE))
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
        print(f"  peak RSS of this process (client and both emulators): {peak_mb:.0f} MB")
        slow_wdt.shutdown()
        slow_kingdee.shutdown()


if __name__ == "__main__":
    main()
