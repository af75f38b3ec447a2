"""Time each step of one window, end to end against both emulators, and print the figures.

    .venv/bin/python scripts/bench_pipeline.py [--scheme sales_outstock] [--orders 5000] [--days 10] [--chunk-size 100]

Runs the plain step functions (no scheduler) of one scheme of include/schemes (``--scheme``: its
name) over a window holding every generated document (the seeded days and the week after, when the
last returns and receipts complete), with the WDT client's throttle off, and prints seconds and
documents per second per step and the peak RSS. A scheme that requires other flows' bills in Kingdee
(a return's sale) has those flows loaded first, untimed.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from socketserver import BaseServer

from airflow.sdk import ObjectStoragePath

from emulators import kingdee, wdt
from emulators.kingdee import KingdeeIdentity
from emulators.wdt import WdtIdentity
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, load_schemes
from erpsync.steps.extract import extract
from erpsync.steps.load import load
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.wdt.connector import WdtReader
from erpsync.windows import Window, parse_datetime

REPO = Path(__file__).resolve().parents[1]
# read by great_expectations when it is imported; none of the imports above import it
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


WDT: WdtIdentity = {"app_key": "bench", "app_secret": "bench-secret", "target_app_key": "21363512", "sid": "bench"}
KINGDEE: KingdeeIdentity = {
    "acct_id": "bench01",
    "username": "bench",
    "app_id": "100001_" + "A" * 32,
    "app_secret": "bench-secret",
}


def serve(server: BaseServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="sales_outstock", help="the scheme's name (include/schemes/<name>.yaml)")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=100)
    args = parser.parse_args()
    start = date(2026, 10, 1)

    with tempfile.TemporaryDirectory(prefix="erpsync-bench-") as tmp:
        wdt_server = wdt.make_server("127.0.0.1", 0, **WDT, seed=1, orders=args.orders, start=start, days=args.days)
        kingdee_server = kingdee.make_server("127.0.0.1", 0, **KINGDEE, data_dir=Path(tmp) / "kingdee", seed=1)
        serve(wdt_server)
        serve(kingdee_server)
        schemes = {s.name: s for s in load_schemes(INCLUDE_DIR)}
        scheme = schemes[args.scheme]
        load_settings = scheme.settings.load.model_copy(update={"chunk_size": args.chunk_size})
        window = Window.of(
            parse_datetime(start.isoformat(), "s"),
            parse_datetime((start + timedelta(days=args.days + 7)).isoformat(), "e"),
        )
        staging = ObjectStoragePath(Path(tmp).as_uri()) / "staging"
        wdt_client = WdtClient(WdtConfig(url=wdt_server.url, min_interval_seconds=0, **WDT))
        writer = KingdeeTarget(K3CloudClient(K3CloudConfig(server_url=kingdee_server.url, **KINGDEE)))
        required = {r.form for r in scheme.target.requires}
        for other in schemes.values():  # the flows whose bills this one requires, loaded first
            if other.target.form.form_id in required:
                first = Run.open(other, window, staging, run_id="bench")
                extract(first, WdtReader(wdt_client, other.source))
                validate(first)
                transform(first)
                print(f"  (first {other.name}: {load(first, writer)})")
        scheme = scheme.edited("settings.load", load_settings)
        run = Run.open(scheme, window, staging, run_id="bench")
        reader = WdtReader(wdt_client, scheme.source)

        steps = [
            ("extract", lambda: extract(run, reader)),
            ("validate", lambda: validate(run)),
            ("transform", lambda: transform(run)),
            ("load", lambda: load(run, writer)),
            ("load again", lambda: load(run, writer)),
        ]
        print(
            f"{args.scheme}: {args.orders} generated stock-outs over {args.days} days, window {window}, chunk {args.chunk_size}"
        )
        orders = None
        for name, step in steps:
            began = time.perf_counter()
            result = step()
            seconds = time.perf_counter() - began
            orders = getattr(result, "orders", orders)
            rate = f"{orders / seconds:8.0f} orders/s" if orders else ""
            print(f"  {name:<11}{seconds:8.2f} s {rate}   {result}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process (client and both emulators): {peak_mb:.0f} MB")
        wdt_server.shutdown()
        kingdee_server.shutdown()


if __name__ == "__main__":
    main()
