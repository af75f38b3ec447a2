"""Kingdee load throughput: our chunked, concurrent load against one bill per call, one call at a time.

    .venv/bin/python scripts/bench_load.py [--bills 2000] [--lines 3] [--latency-ms 50] [--per-bill-ms 10]
                                           [--max-concurrent 4] [--chunk-size 100] [--concurrency 4]

Starts the Kingdee emulator as its own process (``python -m emulators.kingdee`` with the latency
flags), then in the same run:

* **load**: the load step (look-up, then BatchSave of the missing bills) with ``--chunk-size`` and
  ``--concurrency``, and once more (every bill already there: look-ups only);
* **one by one**: the way most integrations post, one BatchSave of one bill per call, one call at a
  time, no look-up, for the same number of bills.

Prints bills per second of both, their ratio, and the share reached of the bound the emulator's
settings allow: max_concurrent x chunk / (latency + chunk x per_bill). Targets: at least 10x the
one-by-one way and at least 80% of the bound.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from emulators.dataset import build_catalog
from emulators.kingdee import DEFAULT_CREDENTIALS
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, LoadSettings, load_scheme
from erpsync.staging import RunFiles, write_json, write_jsonl
from erpsync.steps.load import load
from erpsync.windows import Window, parse_datetime

REPO = Path(__file__).resolve().parents[1]
FORM = "SAL_OUTSTOCK"
OPTIONS = {"IsAutoSubmitAndAudit": False, "IsVerifyBaseDataField": False, "SubSystemId": "21"}


def bills(prefix: str, count: int, lines: int, seed: int) -> list[dict]:
    catalog = build_catalog(seed)
    skus = [s for s in catalog.skus if s.known_to_kingdee]
    shop, warehouse = catalog.shops[0].shop_no, catalog.warehouses[0].warehouse_no
    out = []
    for n in range(count):
        entries = [
            {
                "FMaterialID": {"FNumber": sku.spec_no},
                "FMustQty": "2",
                "FRealQty": "2",
                "FTaxPrice": str(sku.price),
                "FIsFree": False,
                "FLot": {"FNumber": "20250822"},
                "FOwnerTypeID": "BD_OwnerOrg",
                "FOwnerID": {"FNumber": warehouse},
                "FStockID": {"FNumber": warehouse},
            }
            for sku in (skus[(n + i) % len(skus)] for i in range(lines))
        ]
        number = f"{prefix}{n:06d}"
        model = {
            "FBillTypeID": {"FNUMBER": "XSCKD001"},
            "FBillNo": number,
            "FDate": "2026-11-01 10:00:00",
            "FSaleOrgId": {"FNumber": shop},
            "FCustomerID": {"FNumber": shop},
            "FStockOrgId": {"FNumber": warehouse},
            "FOwnerIdHead": {"FNumber": warehouse},
            "SubHeadEntity": {"FSettleOrgID": {"FNumber": shop}, "FSettleCurrID": {"FNumber": "PRE001"}},
            "FEntity": entries,
        }
        out.append({"bill_no": number, "order_id": str(n), "order_no": number, "model": model})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--per-bill-ms", type=float, default=10)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="erpsync-bench-load-") as tmp:
        command = [
            sys.executable,
            "-m",
            "emulators.kingdee",
            "--port",
            "0",
            "--data-dir",
            f"{tmp}/kingdee",
            "--seed",
            str(args.seed),
            "--latency-ms",
            str(args.latency_ms),
            "--per-bill-ms",
            str(args.per_bill_ms),
            "--max-concurrent",
            str(args.max_concurrent),
        ]
        emulator = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert emulator.stdout is not None  # stdout=PIPE
            url = emulator.stdout.readline().strip()
            credentials = DEFAULT_CREDENTIALS
            client = K3CloudClient(
                K3CloudConfig(
                    server_url=url,
                    acct_id=credentials["acct_id"],
                    username=credentials["username"],
                    app_id=credentials["app_id"],
                    app_secret=credentials["app_secret"],
                )
            )
            window = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
            files = RunFiles(ObjectStoragePath(Path(tmp).as_uri()), "bench", window)
            write_jsonl(bills("BENCH", args.bills, args.lines, args.seed), files.bills)
            write_json(
                {"form_id": FORM, "bill_key": "FBillNo", "service": "BatchSave", "options": OPTIONS}, files.request
            )
            settings = LoadSettings(chunk_size=args.chunk_size, concurrency=args.concurrency)
            scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml").edited("settings.load", settings)
            run = Run(scheme, window, files)  # the load reads form, key and options from request.json

            began = time.perf_counter()
            result = load(run, KingdeeTarget(client))
            ours = time.perf_counter() - began
            assert result.created == args.bills, result
            began = time.perf_counter()
            again = load(run, KingdeeTarget(client))
            rerun = time.perf_counter() - began
            assert again.existing == args.bills, again

            began = time.perf_counter()
            for bill in bills("SINGLE", args.bills, args.lines, args.seed):
                status = client.batch_save(FORM, {**OPTIONS, "Model": [bill["model"]]})
                assert status["IsSuccess"] is True, status
            single = time.perf_counter() - began
            client.close()
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)

    bound = args.max_concurrent * args.chunk_size / ((args.latency_ms + args.chunk_size * args.per_bill_ms) / 1000)
    rate, single_rate = args.bills / ours, args.bills / single
    print(
        f"{args.bills} bills of {args.lines} lines; emulator --latency-ms {args.latency_ms:g} --per-bill-ms "
        f"{args.per_bill_ms:g} --max-concurrent {args.max_concurrent}; load chunk {args.chunk_size}, concurrency {args.concurrency}"
    )
    print(f"  load (look-up + BatchSave)  {ours:7.2f} s  {rate:7.1f} bills/s")
    print(f"  load again (all existing)   {rerun:7.2f} s  {args.bills / rerun:7.1f} bills/s")
    print(f"  one bill per call, serial   {single:7.2f} s  {single_rate:7.1f} bills/s")
    print(f"  ratio                       {rate / single_rate:7.1f}x   (target >= 10x)")
    print(f"  bound of the emulator       {bound:7.1f} bills/s; reached {rate / bound:6.1%}   (target >= 80%)")


if __name__ == "__main__":
    main()
