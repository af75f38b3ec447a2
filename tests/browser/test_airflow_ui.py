"""The Airflow UI as a user meets it, in Debian's Chromium driven by Playwright.

`make airflow`'s script starts a real Airflow (scheduler, dag-processor, triggerer, api-server on an
embedded PostgreSQL) with both emulators in a temporary home; the browser logs in, the DAG is
unpaused and a window triggered, and the report pages are read and photographed. Screenshots are
kept in `artifacts/browser/` (CI keeps that folder).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

DAG_ID = "wdt_kingdee_sales_outstock"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """A live Airflow with the emulators; yields (base URL, user, password, REST headers)."""
    home, port = tmp_path_factory.mktemp("airflow-live"), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test session's home
    log = open(home / "airflow_local.log", "w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "airflow_local.py"), "--emulators", "--home", str(home), "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 240
        headers = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
                user, password = next(iter(passwords.items()))
                token = requests.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=5)
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                if requests.get(f"{base}/api/v2/dags/{DAG_ID}", headers=headers, timeout=5).status_code == 200:
                    break
            except (OSError, ValueError, KeyError, StopIteration, requests.RequestException):
                pass
            time.sleep(2)
        else:
            pytest.fail(f"Airflow did not come up; see {log.name}")
        yield base, user, password, headers
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the script stops Airflow's process group, then PostgreSQL
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (.ci/run installs it with fonts-wqy-microhei)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _text(page) -> str:
    return re.sub(r"\s+", " ", page.inner_text("body"))


def test_a_user_runs_a_window_and_reads_its_reports(airflow, browser):
    base, user, password, headers = airflow
    # a user in China: the browser's zone and language
    page = browser.new_page(timezone_id="Asia/Shanghai", locale="zh-CN", viewport={"width": 1400, "height": 900})

    page.goto(f"{base}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/(?!auth).*"))
    page.goto(f"{base}/dags/{DAG_ID}")
    page.wait_for_load_state("networkidle")
    assert DAG_ID in _text(page)
    _shot(page, "01-dag")

    # new DAGs start paused; the user unpauses and runs one day (the REST call the trigger form makes)
    dag = requests.get(f"{base}/api/v2/dags/{DAG_ID}", headers=headers, timeout=10).json()
    assert dag["is_paused"] is True
    requests.patch(f"{base}/api/v2/dags/{DAG_ID}", headers=headers, json={"is_paused": False}, timeout=10).raise_for_status()
    run_id = "window_2026-11-02"
    requests.post(f"{base}/api/v2/dags/{DAG_ID}/dagRuns", headers=headers, timeout=10, json={
        "logical_date": None, "dag_run_id": run_id, "note": "window [2026-11-02, 2026-11-03) Asia/Shanghai",
        "conf": {"window_start": "2026-11-02", "window_end": "2026-11-03"},
    }).raise_for_status()
    deadline, state = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        state = requests.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=headers, timeout=10).json()["state"]
        if state in ("success", "failed"):
            break
        time.sleep(3)
    assert state == "failed"  # the seeded day holds a zero-quantity order: red, as on_problem: fail asks

    # the run's report, inside Airflow's run page (the plugin's tab) and on its own
    page.goto(f"{base}/dags/{DAG_ID}/runs/{run_id}")
    page.wait_for_load_state("networkidle")
    _shot(page, "02-run")
    page.goto(f"{base}/erpsync/dags/{DAG_ID}/runs/{run_id}")
    page.wait_for_load_state("networkidle")
    report = _text(page)
    assert "2026-11-02 00:00 → 2026-11-03 00:00" in report
    assert "goods_count > 0" in report and "0.0000" in report  # the quarantined order's rule and value
    quarantined = re.search(r"(CK\d{13})", report[report.index("Failing orders"):]).group(1)
    _shot(page, "03-report")

    page.goto(f"{base}/erpsync/search?q={quarantined}")
    page.wait_for_load_state("networkidle")
    assert quarantined in _text(page) and "quarantined" in _text(page)
    _shot(page, "04-search")

    page.goto(f"{base}/erpsync/apis")
    page.wait_for_load_state("networkidle")
    catalog = _text(page)
    assert "wdt.stockout.order.query.trade" in catalog and "SAL_OUTSTOCK" in catalog and "原始单号" in catalog
    _shot(page, "05-apis")

    page.goto(f"{base}/erpsync/dags/{DAG_ID}")
    page.wait_for_load_state("networkidle")
    assert page.query_selector("svg") is not None  # the trend chart
    _shot(page, "06-trend")

    # without Airflow's login the reports are closed
    assert requests.get(f"{base}/erpsync/dags/{DAG_ID}/runs/{run_id}", timeout=10).status_code == 401
