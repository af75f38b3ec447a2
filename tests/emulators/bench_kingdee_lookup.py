"""Look-up benchmark of the Kingdee emulator (not collected by pytest: run it by hand).

``.venv/bin/python -m tests.emulators.bench_kingdee_lookup [BILLS]`` saves BILLS (default 3600) bills of
three rows each over HTTP, then times ExecuteBillQuery by bill number (``FBillNo = '…'``,
``FBillNo in (20 numbers)``, the same with row keys) and prints the mean milliseconds per query, over
HTTP and in the query engine alone. ``… bench_kingdee_lookup --saves`` times 4 concurrent BatchSaves of
100 bills at ``--latency-ms 50 --per-bill-ms 10``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from emulators.kingdee import DEFAULT_CREDENTIALS, make_server
from tests.conftest import serving
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    QUERY,
    VALIDATE_USER,
    batch_save,
    bill,
    row,
    sdk_for,
)

ROUNDS = 50


def main(count: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(make_server("127.0.0.1", 0, data_dir=Path(tmp), seed=0, **DEFAULT_CREDENTIALS)) as srv,
    ):
        http = requests.Session()
        login: dict[str, Any] = {
            "acctID": DEFAULT_CREDENTIALS["acct_id"],
            "username": DEFAULT_CREDENTIALS["username"],
            "password": DEFAULT_CREDENTIALS["app_secret"],
            "lcid": 2052,
        }
        assert http.post(srv.url + VALIDATE_USER + ".common.kdsvc", json=login).json()["LoginResultType"] == 1
        for start in range(0, count, 200):
            numbers = range(start, min(count, start + 200))
            models = [bill(f"CK{n:08d}", rows=[row(), row(), row()]) for n in numbers]
            body = {"formid": "SAL_OUTSTOCK", "data": {"Model": models}}
            http.post(srv.url + BATCH_SAVE + ".common.kdsvc", data=json.dumps(body)).raise_for_status()

        def timed(filter_text: str, keys: str = "FID,FBillNo") -> str:
            data = {"FormId": "SAL_OUTSTOCK", "FieldKeys": keys, "FilterString": filter_text}
            started = time.perf_counter()
            for _ in range(ROUNDS):
                rows = http.post(srv.url + QUERY + ".common.kdsvc", data=json.dumps({"data": data})).json()
            over_http = (time.perf_counter() - started) / ROUNDS * 1000
            assert rows and not isinstance(rows[0][0], dict), rows
            started = time.perf_counter()
            for _ in range(ROUNDS):  # the query engine alone, without HTTP and JSON
                srv.emulator.queries.run(data)
            engine = (time.perf_counter() - started) / ROUNDS * 1000
            return f"{over_http:.1f} ms over HTTP, {engine:.2f} ms in the engine"

        many = ", ".join(f"'CK{n:08d}'" for n in range(0, count, max(1, count // 20)))
        print(f"{count} bills, mean of {ROUNDS} queries:")
        one = f"FBillNo = 'CK{count // 2:08d}'"
        print(f"  FBillNo = '…':                  {timed(one)}")
        print(f"  FBillNo in (20):                {timed(f'FBillNo in ({many})')}")
        row_keys = "FBillNo,FEntity_FEntryID,FMaterialID.FNumber,FRealQty"
        print(f"  FBillNo in (20), row keys:      {timed(f'FBillNo in ({many})', row_keys)}")


def concurrent_saves() -> None:
    """4 concurrent BatchSaves of 100 bills at --latency-ms 50 --per-bill-ms 10 (ideal: 1.05 s)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(
            make_server(
                "127.0.0.1", 0, data_dir=Path(tmp), seed=0, latency_ms=50, per_bill_ms=10, **DEFAULT_CREDENTIALS
            )
        ) as srv,
    ):
        sdks = [sdk_for(srv.url) for _ in range(4)]
        for sdk in sdks:
            sdk.GetDataCenters()  # open the sessions first
        saved: list[int] = []

        def save(k: int) -> None:
            result = batch_save(sdks[k], *[bill(f"CK-{k}-{i}") for i in range(100)])
            saved.append(len(result["ResponseStatus"]["SuccessEntitys"]))

        threads = [threading.Thread(target=save, args=(k,)) for k in range(4)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"4 concurrent BatchSaves of 100 bills: {time.perf_counter() - started:.3f} s, saved {saved}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--saves"]:
        concurrent_saves()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3600)
