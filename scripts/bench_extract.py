"""WDT extraction throughput against the gateway's call limit, and memory as the window grows.

    .venv/bin/python scripts/bench_extract.py [--orders 5000] [--throttle-per-minute 600] [--latency-ms 80]
                                              [--scales 1,10]

For each scale S it starts the WDT emulator as its own process with S x ``--orders`` orders shipped on
one day (``--throttle-per-minute N``: code 1012 beyond N calls a minute; ``--latency-ms``), then runs
the extract step in a child process with the client's limit set to match (60/N seconds between
calls), over the days the orders ship and complete on. Prints orders/s against the bound N sets
(N/60 calls a second x page size) and the extract process's peak RSS. Targets: at least 90% of the
bound; memory that does not grow with the window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-10-01"
CHILD = """
import json, resource, sys, time
from datetime import timedelta
from airflow.sdk import ObjectStoragePath
from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles
from erpsync.steps.extract import extract
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.windows import Window, parse_datetime
url, root, interval, rate_file = sys.argv[1:]
scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
scheme = scheme.edited("source.lookback", timedelta(0))
window = Window.of(parse_datetime("2026-10-01", "s"), parse_datetime("2026-10-04", "e"))
client = WdtClient(WdtConfig(url=url, app_key="bench", app_secret="bench-secret", target_app_key="21363512",
                             sid="bench", min_interval_seconds=float(interval), throttle_pause_seconds=5,
                             rate_limit_url=rate_file))
import pyarrow.parquet  # noqa: F401  (loaded before the clock starts: steady state, not start-up)
began = time.perf_counter()
result = extract(scheme, window, client, RunFiles(ObjectStoragePath(root), "bench", window))
print(json.dumps({"seconds": time.perf_counter() - began, "orders": result.orders, "lines": result.lines,
                  "calls": result.calls, "throttled": client.throttled_seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(scale: int, args: argparse.Namespace, tmp: Path) -> dict:
    orders = args.orders * scale
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.wdt",
            "--port",
            "0",
            "--app-key",
            "bench",
            "--app-secret",
            "bench-secret",
            "--sid",
            "bench",
            "--seed",
            "1",
            "--orders",
            str(orders),
            "--start",
            DAY,
            "--days",
            "1",
            "--throttle-per-minute",
            str(args.throttle_per_minute),
            "--latency-ms",
            str(args.latency_ms),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert emulator.stdout is not None  # stdout=PIPE
        url = emulator.stdout.readline().strip()
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                url,
                (tmp / f"staging-{scale}").as_uri(),
                str(60 / args.throttle_per_minute),
                str(tmp / f"rate-{scale}.sqlite"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--throttle-per-minute", type=int, default=600)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--page-size", type=int, default=100, help="the scheme's page size (for the bound)")
    parser.add_argument("--scales", default="1,10")
    args = parser.parse_args()
    bound = args.throttle_per_minute / 60 * args.page_size
    print(
        f"WDT emulator: --throttle-per-minute {args.throttle_per_minute} --latency-ms {args.latency_ms:g}; "
        f"bound {bound:.0f} orders/s ({args.throttle_per_minute / 60:g} calls/s x {args.page_size})"
    )
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-extract-") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            r = run(scale, args, Path(tmp))
            rate = r["orders"] / r["seconds"]
            print(
                f"  {scale:>3}x  {r['orders']:>7} orders {r['lines']:>7} lines  {r['calls']:>5} calls  "
                f"{r['seconds']:7.1f} s  {rate:6.0f} orders/s = {rate / bound:5.1%} of the bound  "
                f"throttled {r['throttled']:.0f} s  peak RSS {r['rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
