"""A window staged on object storage, as workers on several hosts share it: ``staging_root`` is
``s3://<conn_id>@bucket/prefix`` on an S3-compatible server (moto's, started from its PyPI package as a
process of its own on a loopback port), reached through an Airflow connection of type ``aws`` whose
``endpoint_url`` names it.

One window runs end to end against both emulators (``dag.test()``, the worker); its files are then in
the bucket and nowhere else, Kingdee has its bills, and the report pages and the order search, served
by Airflow's own api-server app in this process, read them from the bucket. The same window run again
by ``airflow dags test`` in another process (a worker on another host) adds no bill, and the pages
this process already read show what that run wrote.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import pytest

from tests.conftest import KINGDEE, REPO, SEED, connect_emulators, free_port, serving, stop_group

pytestmark = pytest.mark.e2e

DAG_ID = "wdt_kingdee_sales_outstock"
WINDOW = {"window_start": "2026-11-01T00:00:00", "window_end": "2026-11-06T00:00:00"}
FOLDER = "window=20261101T000000_20261106T000000"
BUCKET = "erpsync-staging"
PREFIX = "deploy/staging"
CONN_ID = "erpsync_s3"
ACCESS_KEY, SECRET_KEY = "erpsync-test-key", "erpsync-test-secret"  # moto takes any; both are masked


@dataclass
class S3:
    url: str  # the server's endpoint
    log: Path

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Every object under ``PREFIX/prefix`` in the bucket: its key relative to PREFIX, and its size."""
        found: dict[str, int] = {}
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{prefix}")
        for page in pages:
            for item in page.get("Contents", []):
                found[item["Key"].removeprefix(f"{PREFIX}/")] = item["Size"]
        return found


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3]:
    """moto's S3 server as a process of its own (``sys.executable``: CI's PATH holds no console script)."""
    import requests

    log = tmp_path_factory.mktemp("s3") / "moto.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        found = S3(url, log)
        found.client().create_bucket(Bucket=BUCKET)
        yield found
    finally:
        stop_group(server, timeout=10)


@dataclass
class World:
    s3: S3
    kingdee: Any
    root: str  # the staging root URL
    run_id: str
    bills: list[Any]  # Kingdee's SAL_OUTSTOCK (FID, FBillNo) rows after the first run
    local: Path  # where a local staging root would have been: $AIRFLOW_HOME/staging


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory, wdt_emulator, airflow_db) -> Iterator[World]:
    """One run of the window with staging on S3, and the environment for reading it afterwards."""
    from emulators.kingdee import make_server
    from erpsync.dag_factory import build_dags

    base = tmp_path_factory.mktemp("s3-staging")
    root = f"s3://{CONN_ID}@{BUCKET}/{PREFIX}"
    kingdee_server = make_server("127.0.0.1", 0, **KINGDEE, data_dir=base / "kingdee", seed=SEED)
    with pytest.MonkeyPatch.context() as mp, serving(kingdee_server) as kingdee:
        mp.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", root)
        mp.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": ACCESS_KEY,
                    "password": SECRET_KEY,
                    "extra": {"endpoint_url": s3.url, "region_name": "us-east-1"},
                }
            ),
        )
        connect_emulators(mp, wdt_emulator.url, kingdee.url)
        # the data set's bad orders make the window red (on_problem: fail) after everything else loaded
        run = build_dags()[DAG_ID].test(run_conf=WINDOW)
        tasks = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert (run.state, tasks) == (
            "failed",
            {
                "extract": "success",
                "validate": "success",
                "transform": "success",
                "load": "failed",
                "prune_staging": "success",
            },
        ), tasks
        bills = sorted(_kingdee(kingdee).execute_bill_query("SAL_OUTSTOCK", ["FID", "FBillNo"]))
        local = Path(os.environ["AIRFLOW_HOME"]) / "staging"
        yield World(s3, kingdee, root, run.run_id, bills, local)


def _kingdee(server: Any) -> Any:
    from erpsync.kingdee.client import K3CloudClient, K3CloudConfig

    return K3CloudClient(K3CloudConfig(server_url=server.url, **KINGDEE))


def _files(world: World) -> Any:
    from erpsync.staging import RunFiles, staging_root
    from erpsync.windows import Window, parse_datetime

    window = Window.of(parse_datetime(WINDOW["window_start"], "s"), parse_datetime(WINDOW["window_end"], "e"))
    files = RunFiles(staging_root(), DAG_ID, window)
    assert str(files.dir) == f"{world.root}/{DAG_ID}/{FOLDER}"
    return files


def _report(world: World) -> Any:
    from erpsync.steps.load import read_report

    return read_report(_files(world))


@pytest.fixture(scope="module")
def api(world) -> Any:
    """Airflow's api-server app (the erpsync pages mounted at /erpsync by the plugin, reading the
    staging root from ``[erpsync] staging_root``), with a viewer's token."""
    from airflow.api_fastapi.app import create_app, init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer-user", role="viewer"))
    return TestClient(create_app(apps="core"), headers={"Authorization": f"Bearer {token}"})


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _page(api: Any, path: str, **params: str) -> str:
    response = api.get(f"/erpsync{path}", params=params)
    assert response.status_code == 200, (path, response.status_code, response.text[-2000:])
    return response.text


def test_the_windows_files_are_in_the_bucket_and_only_there(world):
    keys = world.s3.keys(f"{DAG_ID}/{FOLDER}/")
    names = {key.split("/", 2)[2] for key in keys}
    for name in (
        "extract_summary.json",
        "orders.parquet",
        "lines.parquet",
        "quarantine.parquet",
        "quality/summary.json",
        "quality/docs/index.html",
        "bills.jsonl",
        "request.json",
        "finished.json",
    ):
        assert name in names, (name, sorted(names))
    assert any(re.fullmatch(r"load_report/part-\d{6}\.parquet", n) for n in names), sorted(names)
    assert any(n.startswith("calls/") and n.endswith(".parquet") for n in names), sorted(names)
    assert all(size > 0 for key, size in keys.items() if not key.endswith("/")), keys
    # every write was a whole object renamed into place: no temporary object is left behind
    assert not [key for key in world.s3.keys() if key.rsplit("/", 1)[-1].endswith(".tmp")]
    assert "complete.json" not in names  # a red window satisfies no scheme that waits for it
    # the Data Docs' shared assets are stored once, beside the DAGs
    assert any(key.startswith("_gx_static/") for key in world.s3.keys("_gx_static/"))
    # nothing was staged on the local disk instead
    assert not (world.local / DAG_ID).exists()


def test_kingdee_has_the_windows_bills_and_the_report_says_so(world, dataset):
    in_window = [
        o for o in dataset.orders if o["status"] == 110 and "2026-11-01" <= o["consign_time"][:10] <= "2026-11-03"
    ]
    valid = {o["order_no"] for o in in_window if o["order_no"] not in dataset.defects}
    assert valid and {number for _, number in world.bills} == valid and len(world.bills) == len(valid)
    report = _report(world)
    assert set(report.loc[report["outcome"] == "created", "bill_no"]) == valid
    assert {"held", "quarantined"} <= set(report["outcome"])


def test_the_pages_and_the_search_read_the_window_from_the_bucket(world, api, monkeypatch):
    import pandas as pd
    import pendulum

    from erpsync.staging import read_json, read_parquet

    files = _files(world)
    report = _report(world)
    orders = read_parquet(files.orders)
    summary = read_json(files.quality / "summary.json")
    counts = report["outcome"].value_counts()

    index = _text(_page(api, "/"))
    assert DAG_ID in index and "SAL_OUTSTOCK" in index
    dag_page = _page(api, f"/dags/{DAG_ID}")
    assert f"/windows/{quote(FOLDER, safe='')}" in dag_page and world.run_id in _text(dag_page)
    assert f"created: {counts['created']}</title>" in dag_page  # the trend's bar, from the load report's parts

    run = _text(_page(api, f"/dags/{DAG_ID}/runs/{quote(world.run_id, safe='')}"))
    assert "2026-11-01 00:00 → 2026-11-06 00:00" in run
    checked, bad = summary["orders"], summary["quarantined_orders"]
    assert bad and f"{checked - bad} / {checked} 通过 passed of checked" in run
    assert f"已创建 created {counts['created']} " in run and "goods_count > 0" in run
    for row in report[report["outcome"] == "held"].itertuples():
        assert row.order_no in run and "BD_MATERIAL has no number 'NEW-SKU-999'" in run

    window = _page(api, f"/dags/{DAG_ID}/windows/{quote(FOLDER, safe='')}")
    assert f"已创建 created {counts['created']} " in _text(window)
    # the Data Docs are served from the bucket too, their shared assets included
    doc = re.search(r'href="/erpsync(/staging/[^"]+/quality/docs/validations/[^"]+\.html)"', window)
    assert doc, window[-3000:]
    served = api.get(f"/erpsync{doc.group(1)}")
    assert served.status_code == 200 and "goods_count" in served.text
    asset = re.search(r'href="([^"]*_gx_static[^"]*)"', served.text)
    assert asset and api.get(urljoin(f"/erpsync{doc.group(1)}", asset.group(1))).status_code == 200

    # where is my order? DuckDB reads the window's Parquet files from the bucket through fsspec
    created = report[report["outcome"] == "created"].iloc[0]
    found = _text(_page(api, "/search", q=created["order_no"]))
    assert "1 个订单 order(s)" in found and "2026-11-01 00:00 → 2026-11-06 00:00" in found
    assert created["kingdee_number"] in found
    by_bill = _text(_page(api, "/search", q=created["kingdee_number"]))
    assert "1 个订单 order(s)" in by_bill and created["order_no"] in by_bill
    quarantined = report[report["outcome"] == "quarantined"].iloc[0]
    page = _text(_page(api, "/search", q=quarantined["order_no"]))
    assert "隔离 quarantined" in page and "goods_count > 0" in page
    line = read_parquet(files.lines).dropna(subset=["src_tid"]).iloc[0]
    number = orders.set_index("stockout_id").loc[line["stockout_id"], "order_no"]
    page = _text(_page(api, "/search", q=line["src_tid"]))
    assert number in page and "lines.src_tid" in page
    assert "No order matches" in _page(api, "/search", q="CK-NOT-A-NUMBER")

    # the API catalog's figures: DuckDB over the window's per-call records in the bucket
    calls = pd.concat([read_parquet(p) for p in files.calls.iterdir()])
    wdt = calls[calls["system"] == "wdt"]
    assert len(wdt) and (wdt["outcome"] == "ok").all()
    monkeypatch.setattr("erpsync.ui.app._now", lambda: pendulum.datetime(2026, 11, 10, tz="Asia/Shanghai"))
    apis = _text(_page(api, "/apis", days="30"))
    assert re.search(rf"wdt.stockout.order.query.trade {len(wdt)} 0 [\d.]+ ms [\d.]+ ms {int(wdt['rows'].sum())}", apis)


def test_a_rerun_on_another_worker_adds_no_bill_and_the_pages_show_it(world, api):
    """``airflow dags test`` in a process of its own, as a worker on another host: it reads and
    rewrites the window's files in the bucket; this process, which already read them, shows the new ones.
    (Last in this file: it changes the window the tests above read.)"""
    before = _text(_page(api, f"/dags/{DAG_ID}/windows/{quote(FOLDER, safe='')}"))
    assert f"已创建 created {len(world.bills)} · 已存在 existing 0" in before
    finished = _files(world).finished.read_text()

    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "--conf", json.dumps(WINDOW)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    logs = done.stdout + done.stderr
    assert done.returncode != 0 and "DagRun failed" in logs, logs[-3000:]  # the same bad orders: red again
    assert SECRET_KEY not in logs

    assert sorted(_kingdee(world.kingdee).execute_bill_query("SAL_OUTSTOCK", ["FID", "FBillNo"])) == world.bills
    report = _report(world)
    assert set(report["outcome"]) == {"existing", "held", "quarantined"}
    assert set(report.loc[report["outcome"] == "existing", "bill_no"]) == {number for _, number in world.bills}
    assert _files(world).finished.read_text() != finished  # the other process rewrote it

    after = _text(_page(api, f"/dags/{DAG_ID}/windows/{quote(FOLDER, safe='')}"))
    assert f"已创建 created 0 · 已存在 existing {len(world.bills)}" in after
    existing = report[report["outcome"] == "existing"].iloc[0]
    found = _text(_page(api, "/search", q=existing["order_no"]))
    assert "已存在 existing" in found
