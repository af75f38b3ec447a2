"""The WDT client and the extract step against the WDT emulator, over loopback."""

from __future__ import annotations

import json
import time

import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, SchemeError, load_scheme
from erpsync.staging import RunFiles, filters_digest, read_parquet
from erpsync.steps.extract import extract, request_params
from erpsync.wdt.client import QimenClient, QimenConfig, WdtApiError
from erpsync.wdt.paging import PagingError, TotalCountPaginator
from erpsync.windows import Window, parse_datetime
from tests.conftest import SEED, START, WDT, serving

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
METHOD = "wdt.stockout.order.query.trade"
PAGINATOR = TotalCountPaginator(page_size=2, start_page=0, list_key="stockout_list", total_key="total_count", id_key="stockout_id")


def _client(server, **overrides) -> QimenClient:
    config = {**WDT, "gateway_url": server.url, "min_interval_seconds": 0, "backoff_seconds": 0.01, **overrides}
    return QimenClient(QimenConfig(**config))


def _window(start: str, end: str) -> Window:
    return Window.of(parse_datetime(start, "start"), parse_datetime(end, "end"))


def _expected(dataset, window: Window, status: str = "110") -> set[str]:
    start, end = window.api_bounds()
    return {
        o["order_no"]
        for o in dataset.orders
        if str(o["status"]) == status and start <= o["consign_time"] <= end
    }


def test_a_signed_call_reads_orders_with_exact_numbers(wdt_emulator):
    client = _client(wdt_emulator)
    params = request_params(SCHEME, _window("2026-11-01", "2026-11-02"))
    response = client.call(METHOD, {**params, "page_no": "0", "page_size": "5"})
    assert int(response["total_count"]) > 5
    order = response["stockout_list"][0]
    # money and quantities keep WDT's 4 decimals as text; ids arrive as text too
    assert order["goods_total_amount"].count(".") == 1 and len(order["goods_total_amount"].split(".")[1]) == 4
    assert order["details_list"][0]["goods_count"].endswith(".0000")
    assert isinstance(order["stockout_id"], str)


def test_a_wrong_secret_is_a_clear_error_without_the_secret(wdt_emulator):
    client = _client(wdt_emulator, app_secret="not-the-secret")
    with pytest.raises(WdtApiError, match="code 25: Invalid signature") as caught:
        client.call(METHOD, request_params(SCHEME, _window("2026-11-01", "2026-11-02")))
    assert "not-the-secret" not in str(caught.value)


def test_a_business_error_names_the_parameter(wdt_emulator):
    client = _client(wdt_emulator)
    with pytest.raises(WdtApiError, match="page_size"):
        client.call(METHOD, {"start_time": "2026-11-01 00:00:00", "end_time": "2026-11-01 01:00:00", "page_size": "101"})


def test_busy_answers_are_retried():
    from emulators.wdt import make_server

    now = [time.time()]  # the emulator checks request timestamps against this clock too
    with serving(make_server(**WDT, seed=SEED, orders=20, start=START, days=2, rate_limit_per_minute=2, clock=lambda: now[0])) as server:
        slept = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += 61  # the emulator's minute passes while we wait

        config = QimenConfig(**WDT, gateway_url=server.url, min_interval_seconds=0, backoff_seconds=1)
        client = QimenClient(config, sleep=sleep)
        params = {"stockout_no": "CK-NONE"}
        for _ in range(3):
            client.call(METHOD, params)
        assert slept == [1]  # the third call met code 1012 once, waited, and went through
        assert client.calls == 4


def test_the_client_keeps_its_distance_between_calls(wdt_emulator):
    ticks, slept = [0.0], []
    client = QimenClient(
        QimenConfig(**WDT, gateway_url=wdt_emulator.url, min_interval_seconds=1.0),
        clock=lambda: ticks[0],
        sleep=lambda s: slept.append(s),
    )
    client.call(METHOD, {"stockout_no": "CK-NONE"})
    ticks[0] += 0.25
    client.call(METHOD, {"stockout_no": "CK-NONE"})
    assert slept == [0.75]


def test_extract_reads_every_completed_order_of_the_window(wdt_emulator, dataset, tmp_path):
    window = _window("2026-11-01", "2026-11-04")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    client = _client(wdt_emulator)
    scheme = _with_page_size(7)  # many pages: page 0 first, then the rest backwards
    result = extract(scheme, window, client, files)

    orders, lines = read_parquet(files.orders), read_parquet(files.lines)
    assert set(orders["order_no"]) == _expected(dataset, window)
    assert result.orders == len(orders) and result.lines == len(lines)
    assert result.calls == -(-result.orders // 7)
    # every response field is kept, including the whole of the user's response table
    assert set(SCHEME.source.api.order_fields) <= set(orders.columns)
    assert {"goods_count", "sell_price", "batch_no", "product_date", "src_tid"} <= set(lines.columns)
    assert all(dtype == "string" for dtype in orders.dtypes)
    source = {o["order_no"]: o for o in dataset.orders}
    for row in orders.head(5).itertuples():
        assert row.goods_total_amount == source[row.order_no]["goods_total_amount"]
    assert set(lines["stockout_id"]) == set(orders["stockout_id"])


def test_extract_of_a_window_with_no_orders_writes_empty_files(wdt_emulator, tmp_path):
    window = _window("2025-01-01", "2025-01-02")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    result = extract(SCHEME, window, _client(wdt_emulator), files)
    assert result.orders == 0 and read_parquet(files.orders).empty
    assert "order_no" in read_parquet(files.orders).columns


def test_a_long_window_is_read_in_sub_windows(wdt_emulator, dataset, tmp_path):
    window = _window("2026-10-01", "2026-11-04")  # 34 days: more than the API's 30
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    result = extract(SCHEME, window, _client(wdt_emulator), files)
    assert result.sub_windows == 2
    assert set(read_parquet(files.orders)["order_no"]) == _expected(dataset, window)


def test_filters_narrow_a_run_and_get_their_own_folder(wdt_emulator, dataset, tmp_path):
    window = _window("2026-11-01", "2026-11-04")
    filters = {"shop_no": "FENXIAO004"}
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window, filters)
    assert files.dir.name == f"window={window.key},filters={filters_digest(filters)}"
    extract(SCHEME, window, _client(wdt_emulator), files, filters)
    assert json.loads(files.filters.read_text()) == filters
    orders = read_parquet(files.orders)
    expected = {o["order_no"] for o in dataset.orders if o["shop_no"] == "FENXIAO004"} & _expected(dataset, window)
    assert set(orders["order_no"]) == expected and expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"start_time": "2020-01-01"}, "filter 'start_time' is not allowed: a run may set only src_order_no, src_tid"),
        ({"nick": "x"}, "filter 'nick' is not allowed"),
        ({"status": "5"}, "filter 'status' is not allowed"),  # would turn cancelled stock-outs into bills
        ({"page_size": "1"}, "filter 'page_size' is not allowed"),
        ({"shop_no": "../../x"}, "is not a document number or code"),
        ({"shop_no": "S1/../../x"}, "is not a document number or code"),
        ({"stockout_no": "CK1' or 1=1"}, "is not a document number or code"),
        ({"shop_no": ""}, "is not a document number or code"),
        ({"shop_no": 5}, "is not a document number or code"),
    ],
)
def test_bad_filters_are_refused_before_any_call(filters, message):
    with pytest.raises(SchemeError, match=message):
        request_params(SCHEME, _window("2026-11-01", "2026-11-02"), filters)


def test_good_filters_reach_the_request():
    params = request_params(SCHEME, _window("2026-11-01", "2026-11-02"), {"shop_no": "FENXIAO004", "src_tid": "天猫-123_4"})
    assert (params["shop_no"], params["src_tid"], params["status"]) == ("FENXIAO004", "天猫-123_4", "110")


def test_paging_that_loses_orders_is_an_error():
    pages = {0: {"total_count": "3", "stockout_list": [{"stockout_id": "1"}, {"stockout_id": "2"}]},
             1: {"stockout_list": [{"stockout_id": "2"}]}}  # order 3 slid away while we read
    with pytest.raises(PagingError, match="announced 3 orders but the pages held 2"):
        list(PAGINATOR.orders(lambda page, size: pages[page], "test"))


def test_an_order_without_its_key_is_an_error():
    page = {"total_count": "1", "stockout_list": [{"order_no": "CK1"}]}
    with pytest.raises(PagingError, match="order 'CK1' has no stockout_id"):
        list(PAGINATOR.orders(lambda page_no, size: page, "test"))


def _with_page_size(size: int):
    from dataclasses import replace

    return replace(SCHEME, source=replace(SCHEME.source, page_size=size))
