"""The Airflow UI as a user meets it, in Debian's Chromium driven by Playwright.

`make airflow`'s script starts a real Airflow (scheduler, dag-processor, triggerer, api-server on an
embedded PostgreSQL) in a temporary home, and both emulators run as in `make demo`. The browser logs
in, types both connections into their forms and tests them, triggers a window through the params
form, reads the run's report, searches an order, opens the API catalog and the trend, then starts a
two-day backfill from the trigger dialog and cancels it after its first windows. Screenshots are kept
in `artifacts/browser/` (CI keeps that folder).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

DAG_ID = "wdt_kingdee_sales_outstock"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """Both emulators, started and credentialed as `make demo` does; the connections a user must type in."""
    sys.path.insert(0, str(REPO / "scripts"))
    from demo import start_emulators

    with ExitStack() as stack:
        yield start_emulators(stack, tmp_path_factory.mktemp("emulators"))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """A live Airflow without connections (`make airflow`'s way); yields (base URL, user, password, REST headers)."""
    home, port = tmp_path_factory.mktemp("airflow-live"), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test session's home
    log = open(home / "airflow_local.log", "w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "airflow_local.py"), "--home", str(home), "--port", str(port)],
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


def _pick(page, day: str, hour: str) -> None:
    """Fill the next empty date-time picker of a dialog (the picker works in the UI's zone, +08:00 here)."""
    page.get_by_text("选择日期与时间").first.click()
    page.get_by_placeholder("YYYY/MM/DD").fill(day)
    page.get_by_placeholder("HH:mm").fill(hour)
    page.keyboard.press("Escape")
    page.get_by_placeholder("YYYY/MM/DD").wait_for(state="detached")


def _add_connection(page, conn_id: str, type_label: str, fields: dict[str, str], extras: dict[str, str]) -> None:
    page.get_by_role("button", name="添加连接").click()
    page.fill("input[name=connection_id]", conn_id)
    page.get_by_role("dialog").get_by_role("combobox").click()
    page.keyboard.type(type_label)
    page.keyboard.press("Enter")
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.get_by_role("button", name="额外字段", exact=True).click()
    for name, value in extras.items():
        page.fill(f"input[name=element_{name}]", value)


def _save_and_test(page, conn_id: str) -> dict:
    page.get_by_role("button", name="保存").click()
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.wait_for()
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="测试连接").click()
    assert answer.value.status == 200, answer.value.text()
    return answer.value.json()


def _wait_for_runs(base: str, headers: dict, query: str, count: int, timeout: float = 300) -> list[dict]:
    """The DAG's finished runs matching ``query`` once there are ``count`` of them."""
    deadline, runs = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        runs = requests.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns?{query}&state=success&state=failed",
                            headers=headers, timeout=10).json()["dag_runs"]
        if len(runs) >= count:
            return runs
        time.sleep(3)
    pytest.fail(f"{len(runs)} of {count} runs ({query}) finished in {timeout} s")


def test_a_user_sets_up_runs_backfills_and_reads_the_reports(airflow, emulators, browser):
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
    # new DAGs start paused: connections may not exist yet
    assert requests.get(f"{base}/api/v2/dags/{DAG_ID}", headers=headers, timeout=10).json()["is_paused"] is True

    # both connections typed into their labelled forms (no port field: the URL has it), then tested
    wdt, kingdee = emulators["wdt_default"], emulators["kingdee_default"]
    page.goto(f"{base}/connections")
    page.wait_for_load_state("networkidle")
    _add_connection(page, "wdt_default", "旺店通", {"host": wdt["host"], "login": wdt["login"], "password": wdt["password"]},
                    {"sid": json.loads(wdt["extra"])["sid"]})
    tested = _save_and_test(page, "wdt_default")
    assert tested["status"] is True and "WDT accepted app key" in tested["message"], tested
    kingdee_extra = json.loads(kingdee["extra"])
    _add_connection(page, "kingdee_default", "金蝶", {"host": kingdee["host"], "login": kingdee["login"],
                                                      "password": kingdee["password"]},
                    {"acct_id": kingdee_extra["acct_id"], "app_id": kingdee_extra["app_id"]})
    form = _text(page)
    assert "Data centre id (acct_id)" in form and "App id (app_id)" in form and "Server URL" in form
    assert page.locator("input[name=element_app_id]").get_attribute("type") == "password"  # it carries the secret
    _shot(page, "02-kingdee-connection-form")
    tested = _save_and_test(page, "kingdee_default")
    assert tested["status"] is True, tested
    _shot(page, "03-connections-tested")
    stored = requests.get(f"{base}/api/v2/connections/kingdee_default", headers=headers, timeout=10).json()
    assert kingdee_extra["app_id"] not in json.dumps(stored)  # masked like a password

    # a window through the trigger form's params (its "unpause on trigger" box is ticked by default)
    page.goto(f"{base}/dags/{DAG_ID}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="触发 Dag").click()
    _pick(page, "2026/11/02", "00:00")
    _pick(page, "2026/11/03", "00:00")
    _shot(page, "04-trigger-form")
    with page.expect_response(lambda r: r.url.endswith(f"/dags/{DAG_ID}/dagRuns") and r.request.method == "POST") as answer:
        page.get_by_test_id("trigger-dag-submit").click()
    assert answer.value.status == 200, answer.value.text()
    run_id = answer.value.json()["dag_run_id"]
    run = _wait_for_runs(base, headers, "run_type=manual", 1)[0]
    assert run["dag_run_id"] == run_id
    assert run["state"] == "failed"  # the seeded day holds a zero-quantity order: red, as on_problem: fail asks
    assert run["note"] == "window [2026-11-02 00:00:00, 2026-11-03 00:00:00) Asia/Shanghai"

    # the run's report, inside Airflow's run page (the plugin's tab) and on its own
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id)}")
    page.wait_for_load_state("networkidle")
    assert "window [2026-11-02 00:00:00, 2026-11-03 00:00:00) Asia/Shanghai" in _text(page)
    _shot(page, "05-run")
    page.goto(f"{base}/erpsync/dags/{DAG_ID}/runs/{quote(run_id)}")
    page.wait_for_load_state("networkidle")
    report = _text(page)
    assert "2026-11-02 00:00 → 2026-11-03 00:00" in report
    assert "goods_count > 0" in report and "0.0000" in report  # the quarantined order's rule and value
    quarantined = re.search(r"(CK\d{13})", report[report.index("Failing orders"):]).group(1)
    _shot(page, "06-report")

    page.goto(f"{base}/erpsync/search?q={quarantined}")
    page.wait_for_load_state("networkidle")
    assert quarantined in _text(page) and "quarantined" in _text(page)
    _shot(page, "07-search")

    page.goto(f"{base}/erpsync/apis")
    page.wait_for_load_state("networkidle")
    catalog = _text(page)
    assert "wdt.stockout.order.query.trade" in catalog and "SAL_OUTSTOCK" in catalog and "原始单号" in catalog
    _shot(page, "08-apis")

    page.goto(f"{base}/erpsync/dags/{DAG_ID}")
    page.wait_for_load_state("networkidle")
    assert page.query_selector("svg") is not None  # the trend chart
    _shot(page, "09-trend")

    # a two-day backfill from the trigger dialog: inclusive window starts, 48 hourly windows in Shanghai
    page.goto(f"{base}/dags/{DAG_ID}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="触发 Dag").click()
    page.locator("[role=dialog] label:has(input[value=backfill])").click()
    _pick(page, "2026/11/03", "00:00")
    _pick(page, "2026/11/04", "23:00")
    page.get_by_text("将会触发 48 次执行").wait_for()
    _shot(page, "10-backfill-form")
    with page.expect_response(lambda r: r.url.endswith("/api/v2/backfills") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="执行回填").click()
    backfill = answer.value.json()
    assert (backfill["from_date"], backfill["to_date"]) == ("2026-11-02T16:00:00Z", "2026-11-04T15:00:00Z")
    assert backfill["max_active_runs"] == 1  # the scheme's max_active_runs bounds the form
    page.get_by_text("2026-11-03 00:00:00 - 2026-11-04 23:00:00").wait_for()  # the banner, in the UI's zone
    runs = requests.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100", headers=headers, timeout=10).json()
    assert runs["total_entries"] == 48
    finished = _wait_for_runs(base, headers, "run_type=backfill&order_by=run_after", 2)
    assert [r["note"] for r in finished[:2]] == [
        "window [2026-11-03 00:00:00, 2026-11-03 01:00:00) Asia/Shanghai",
        "window [2026-11-03 01:00:00, 2026-11-03 02:00:00) Asia/Shanghai",
    ]
    page.goto(f"{base}/dags/{DAG_ID}/runs")
    page.wait_for_load_state("networkidle")
    _shot(page, "11-backfill-runs")
    # the rest of the two days would take minutes: the user cancels it from the banner
    page.get_by_role("button", name="取消回填").click()
    deadline = time.monotonic() + 60
    while requests.get(f"{base}/api/v2/backfills/{backfill['id']}", headers=headers, timeout=10).json()["completed_at"] is None:
        assert time.monotonic() < deadline, "the backfill was not cancelled"
        time.sleep(2)

    # without Airflow's login the reports are closed
    assert requests.get(f"{base}/erpsync/dags/{DAG_ID}/runs/{quote(run_id)}", timeout=10).status_code == 401
