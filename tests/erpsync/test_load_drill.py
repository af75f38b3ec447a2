"""The exactly-once drill: a Kingdee that loses replies and fails calls, a load killed mid-chunk, reruns.

Against ``python -m emulators.kingdee --lost-response-rate 0.2 --error-rate 0.1`` (its own process),
the same window is loaded by a process that is killed with SIGKILL in the middle of a chunk, then
loaded again several times (as Airflow's retries and a cleared run would). Kingdee must end with
exactly one bill per valid order: the same bills a fault-free run creates, and the same rejections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeTransientError
from erpsync.scheme import LoadSettings
from erpsync.staging import RunFiles, write_json, write_jsonl
from erpsync.steps.load import read_report
from erpsync.windows import Window, parse_datetime
from scripts.bench_load import FORM, OPTIONS, bills
from tests.conftest import KINGDEE, REPO, SEED, load_bills, serving

WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
SETTINGS = LoadSettings(chunk_size=8, concurrency=3, rounds=4)
LOADER = """
import json, sys
from airflow.sdk import ObjectStoragePath
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.scheme import LoadSettings
from erpsync.staging import RunFiles
from erpsync.windows import Window
from tests.conftest import load_bills
url, root, window, acct, user, app_id, secret = sys.argv[1:]
files = RunFiles(ObjectStoragePath(root), "drill", Window.from_dict(json.loads(window)))
client = K3CloudClient(K3CloudConfig(server_url=url, acct_id=acct, username=user, app_id=app_id, app_secret=secret,
                                     backoff_seconds=0.01, max_backoff_seconds=0.05))
load_bills(client, files, LoadSettings(chunk_size=8, concurrency=3, rounds=50))
"""


def _window_files(root: Path) -> RunFiles:
    files = RunFiles(ObjectStoragePath(root.as_uri()), "drill", WINDOW)
    batch = bills("DRILL", 60, 3, SEED)
    for bad in (batch[7], batch[33]):  # Kingdee refuses these: a material it does not know
        bad["model"]["FEntity"][0]["FMaterialID"] = {"FNumber": "NEW-SKU-999"}
    write_jsonl(batch, files.bills)
    write_json({"form_id": FORM, "service": "BatchSave", "options": OPTIONS}, files.request)
    return files


def _client(url: str) -> K3CloudClient:
    return K3CloudClient(K3CloudConfig(server_url=url, **KINGDEE, backoff_seconds=0.01, max_backoff_seconds=0.05))


def _bills_in(url: str) -> list[tuple[int, str]]:
    return sorted((int(fid), str(no)) for fid, no in _client(url).execute_bill_query(FORM, ["FID", "FBillNo"]))


def _load_until_done(url: str, files: RunFiles) -> None:
    """What Airflow's retries do: run the load again while outcomes stay unknown."""
    for _ in range(10):
        try:
            load_bills(_client(url), files, SETTINGS)
            return
        except KingdeeTransientError:
            continue
    raise AssertionError("the load never settled")


def test_faults_kills_and_reruns_leave_exactly_one_bill_per_valid_order(tmp_path):
    from emulators.kingdee import make_server

    clean = _window_files(tmp_path / "clean")
    with serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd-clean", seed=SEED)) as server:
        load_bills(_client(server.url), clean, SETTINGS)
        expected = {no for _, no in _bills_in(server.url)}
    expected_report = read_report(clean)
    rejected = set(expected_report.loc[expected_report["outcome"] == "rejected", "bill_no"])
    assert len(expected) == 58 and rejected == {"DRILL000007", "DRILL000033"}

    files = _window_files(tmp_path / "faulty")
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.kingdee",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "kd-faulty"),
            "--seed",
            str(SEED),
            "--acct-id",
            KINGDEE["acct_id"],
            "--username",
            KINGDEE["username"],
            "--app-id",
            KINGDEE["app_id"],
            "--app-secret",
            KINGDEE["app_secret"],
            "--lost-response-rate",
            "0.2",
            "--error-rate",
            "0.1",
            "--per-bill-ms",
            "15",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = emulator.stdout.readline().strip()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
        loader = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LOADER,
                url,
                (tmp_path / "faulty").as_uri(),
                json.dumps(WINDOW.as_dict()),
                KINGDEE["acct_id"],
                KINGDEE["username"],
                KINGDEE["app_id"],
                KINGDEE["app_secret"],
            ],
            cwd=REPO,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not (files.load_report.exists() and any(files.load_report.iterdir())):  # one chunk done, others in flight
            assert loader.poll() is None, "the load ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        loader.send_signal(signal.SIGKILL)
        loader.wait()
        killed_at = len(_bills_in(url))
        assert 0 < killed_at < len(expected)

        for _ in range(3):  # retries, cleared tasks, a backfill over the same window
            _load_until_done(url, files)
        found = _bills_in(url)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    numbers = [no for _, no in found]
    assert len(numbers) == len(set(numbers)) == len({fid for fid, _ in found})  # one bill per number, no twins
    assert set(numbers) == expected
    report = read_report(files)
    assert set(report.loc[report["outcome"] == "existing", "bill_no"]) == expected
    assert set(report.loc[report["outcome"] == "rejected", "bill_no"]) == rejected
