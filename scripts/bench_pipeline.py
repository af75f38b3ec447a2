"""Time each step of one window, end to end against both emulators, and print the figures.

    .venv/bin/python scripts/bench_pipeline.py [--orders 5000] [--days 10] [--chunk-size 100]

Runs the plain step functions (no scheduler) over a window holding every generated order, with the
WDT client's throttle off, and prints seconds and orders per second per step and the peak RSS.
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
from erpsync.mapping.compile import compile_mapping
from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles
from erpsync.steps.extract import extract
from erpsync.steps.load import load
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
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
        scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
        load_settings = scheme.settings.load.model_copy(update={"chunk_size": args.chunk_size})
        window = Window.of(
            parse_datetime(start.isoformat(), "s"), parse_datetime((start + timedelta(days=args.days)).isoformat(), "e")
        )
        files = RunFiles(ObjectStoragePath(Path(tmp).as_uri()) / "staging", scheme.dag_id, window)
        wdt_client = WdtClient(WdtConfig(url=wdt_server.url, min_interval_seconds=0, **WDT))
        kingdee_client = K3CloudClient(K3CloudConfig(server_url=kingdee_server.url, **KINGDEE))

        steps = [
            ("extract", lambda: extract(scheme, window, wdt_client, files)),
            ("validate", lambda: validate(files, scheme.source.suites, scheme.source.keys, "bench")),
            ("transform", lambda: transform(compile_mapping(scheme), files, scheme.source.keys)),
            ("load", lambda: load(kingdee_client, files, load_settings)),
            ("load again", lambda: load(kingdee_client, files, load_settings)),
        ]
        print(f"{args.orders} generated orders over {args.days} days, window {window}, chunk {args.chunk_size}")
        orders = None
        for name, run in steps:
            began = time.perf_counter()
            result = run()
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
