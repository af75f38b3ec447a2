"""The report pages and the order search know the flows beside the sales from their scheme files:
a return is found by its stock-in number, its refund number and the platform order it came from, and
its DAG's page shows its window, with no code of its own in the UI."""

from __future__ import annotations

import re

import pytest
from airflow.sdk import ObjectStoragePath
from fastapi.testclient import TestClient

from erpsync.staging import RunFiles, read_parquet
from erpsync.windows import Window, parse_datetime
from tests.conftest import KINGDEE, connect_emulators, serving
from tests.erpsync.test_ui import _text

WINDOW = {"window_start": "2026-11-01T00:00:00", "window_end": "2026-11-15T00:00:00"}
RETURNS = "wdt_kingdee_sales_return"


@pytest.fixture(scope="module")
def staged(tmp_path_factory, wdt_emulator, airflow_db):
    from emulators.kingdee import make_server
    from erpsync.dag_factory import build_dags

    base = tmp_path_factory.mktemp("ui-flows")
    root = (base / "staging").as_uri()
    with (
        pytest.MonkeyPatch.context() as mp,
        serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=base / "kingdee", seed=7)) as kingdee,
    ):
        mp.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", root)
        connect_emulators(mp, wdt_emulator.url, kingdee.url)
        dags = build_dags()
        dags["wdt_kingdee_sales_outstock"].test(run_conf=WINDOW)
        assert dags[RETURNS].test(run_conf=WINDOW).state == "success"
    window = Window.of(parse_datetime(WINDOW["window_start"], "s"), parse_datetime(WINDOW["window_end"], "e"))
    return root, RunFiles(ObjectStoragePath(root), RETURNS, window)


@pytest.fixture
def client(staged):
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    from erpsync.ui.app import create_app

    init_auth_manager()
    app = create_app(root=lambda: ObjectStoragePath(staged[0]))
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="viewer-user", role="viewer")
    return TestClient(app)


def test_a_return_is_found_by_each_of_its_numbers(client, staged):
    files = staged[1]
    stockin = read_parquet(files.orders).iloc[0]
    line = read_parquet(files.lines).iloc[0]
    for number in (stockin["order_no"], stockin["refund_no"], stockin["tid"], line["oid"]):
        page = _text(client.get("/search", params={"q": number}).text)
        assert RETURNS in page and stockin["order_no"] in page, number
    page = _text(client.get("/search", params={"q": stockin["order_no"]}).text)
    assert "created" in page and "1 个订单 order(s)" in page


def test_the_return_dags_page_shows_its_window(client, staged):
    page = _text(client.get(f"/dags/{RETURNS}").text)
    assert re.search(r"2026-11-01 00:00 → 2026-11-15 00:00", page)
    assert "SAL_RETURNSTOCK" in _text(client.get("/apis").text)
