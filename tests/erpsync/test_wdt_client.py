"""The WDT client and the extract step against the WDT emulator, over loopback."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, SchemeError, load_scheme
from erpsync.staging import RunFiles, filters_digest, read_parquet
from erpsync.steps.extract import extract
from erpsync.wdt.client import WdtClient, WdtConfig, WdtConfigError, WdtTransientError
from erpsync.wdt.connector import WdtReader, api_bounds, request_params
from erpsync.wdt.paging import PagingError, TotalCountPaginator
from erpsync.windows import Window, parse_datetime
from tests.conftest import REPO, SEED, START, WDT, run_of, serving

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
METHOD = "wdt.stockout.order.query.trade"
PAGINATOR = TotalCountPaginator(
    page_size=2, start_page=0, list_key="stockout_list", total_key="total_count", id_key="stockout_id"
)


RATE_FILE = str(Path(tempfile.mkdtemp(prefix="erpsync-rate-")) / "wdt.sqlite")


def _client(server, **overrides) -> WdtClient:
    config = {
        **WDT,
        "url": server.url,
        "min_interval_seconds": 0,
        "backoff_seconds": 0.01,
        "rate_limit_url": RATE_FILE,
        **overrides,
    }
    return WdtClient(WdtConfig(**config))


def _window(start: str, end: str) -> Window:
    return Window.of(parse_datetime(start, "start"), parse_datetime(end, "end"))


def _expected(dataset, window: Window, scheme=SCHEME) -> set[str]:
    """The completed orders a run of ``window`` reads: last modified in the window or its look-back."""
    start, end = api_bounds(Window(window.start - scheme.source.lookback, window.end), scheme.source.api)
    return {o["order_no"] for o in dataset.orders if o["status"] == 110 and start <= o["modified"] <= end}


def test_a_signed_call_reads_orders_with_exact_numbers(wdt_emulator):
    client = _client(wdt_emulator)
    params = request_params(SCHEME.source, _window("2026-11-01", "2026-11-04"))
    assert (params["status"], params["is_by_modified"]) == ("110", "1")
    response = client.call(METHOD, {**params, "page_no": "0", "page_size": "5"})
    assert int(response["total_count"]) > 5
    order = response["stockout_list"][0]
    # money and quantities keep WDT's 4 decimals as text; ids arrive as text too
    assert order["goods_total_amount"].count(".") == 1 and len(order["goods_total_amount"].split(".")[1]) == 4
    assert order["details_list"][0]["goods_count"].endswith(".0000")
    assert isinstance(order["stockout_id"], str)


def test_a_wrong_secret_is_a_clear_error_without_the_secret(wdt_emulator):
    client = _client(wdt_emulator, app_secret="not-the-secret")
    with pytest.raises(WdtConfigError, match="code 25: Invalid signature") as caught:
        client.call(METHOD, request_params(SCHEME.source, _window("2026-11-01", "2026-11-02")))
    assert "not-the-secret" not in str(caught.value)
    assert client.calls == 1  # refused at once: resending the same request changes nothing


# The emulator's gateway errors come in the observed Qimen shape (response/flag=failure, its default) or
# in TOP's error_response: either way a refusal is a config error carrying the gateway's message.
ERROR_SHAPES = pytest.mark.parametrize("top_error_shape", [False, True], ids=["qimen-shape", "top-shape"])


@ERROR_SHAPES
@pytest.mark.parametrize(
    ("overrides", "expected", "detail"),
    [
        ({"app_secret": "not-the-secret"}, "code 25: Invalid signature", "签名错误"),
        ({"app_key": "not-our-app-key"}, "code 29: Invalid App Key", "app_key不存在: not-our-app-key"),
        ({"target_app_key": "99999999"}, "code 41: Invalid Arguments", "target_app_key无效: 99999999"),
    ],
)
def test_gateway_refusals_are_config_errors_in_either_shape(top_error_shape, overrides, expected, detail):
    from emulators.wdt import make_server

    with serving(
        make_server(**WDT, seed=SEED, orders=20, start=START, days=2, top_error_shape=top_error_shape)
    ) as server:
        client = _client(server, **overrides)
        with pytest.raises(WdtConfigError, match=expected) as caught:
            client.call(METHOD, request_params(SCHEME.source, _window("2026-11-01", "2026-11-02")))
    assert detail in str(caught.value) and "not-the-secret" not in str(caught.value)
    assert client.calls == 1


def test_a_business_error_names_the_parameter_and_is_not_retried(wdt_emulator):
    client = _client(wdt_emulator)
    with pytest.raises(WdtConfigError, match="page_size"):
        client.call(
            METHOD, {"start_time": "2026-11-01 00:00:00", "end_time": "2026-11-01 01:00:00", "page_size": "101"}
        )
    assert client.calls == 1


def test_5xx_answers_are_retried_with_back_off(tmp_path):
    from emulators.wdt import make_server

    with serving(make_server(**WDT, seed=SEED, orders=20, start=START, days=2, error_rate=0.5)) as server:
        slept: list[float] = []
        client = _client(server, max_attempts=10, backoff_seconds=0.5)
        client._sleep = slept.append
        for _ in range(8):
            assert client.call(METHOD, {"stockout_no": "CK-NONE"})["total_count"] == "0"
        assert client.retries == len(slept) > 0 and slept[:2] in ([0.5], [0.5, 1.0], [0.5, 0.5])
        with pytest.raises(WdtTransientError, match="HTTP 5"):  # the same faults without retries
            no_retry = _client(server, max_attempts=1)
            for _ in range(20):
                no_retry.call(METHOD, {"stockout_no": "CK-NONE"})


def test_network_errors_are_retried_then_fail_the_task_for_airflow_to_retry():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/router/qm"
    slept: list[float] = []
    client = WdtClient(
        WdtConfig(**WDT, url=url, min_interval_seconds=0, backoff_seconds=1, max_attempts=4, rate_limit_url=RATE_FILE),
        sleep=slept.append,
    )
    with pytest.raises(WdtTransientError, match="code network"):
        client.call(METHOD, {"stockout_no": "CK-NONE"})
    assert slept == [1, 2, 4] and client.calls == 4


@ERROR_SHAPES
def test_throttle_answers_wait_for_everyone_without_using_the_retry_budget(tmp_path, top_error_shape):
    from emulators.wdt import make_server

    now = [time.time()]  # the emulator's clock and ours: waiting moves both
    with serving(
        make_server(
            **WDT,
            seed=SEED,
            orders=20,
            start=START,
            days=2,
            throttle_per_minute=2,
            clock=lambda: now[0],
            top_error_shape=top_error_shape,
        )
    ) as server:
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        config = WdtConfig(
            **WDT,
            url=server.url,
            min_interval_seconds=0,
            max_attempts=1,
            throttle_pause_seconds=61,
            rate_limit_url=str(tmp_path / "rate.sqlite"),
        )
        client = WdtClient(config, clock=lambda: now[0], sleep=sleep)
        for _ in range(3):
            client.call(METHOD, {"stockout_no": "CK-NONE"})
        assert slept == [61]  # the third call met code 1012 once, held off, and went through
        assert client.calls == 4 and client.throttled_seconds == 61
        # a second client on the same app key (another task) is held off too
        other = WdtClient(config, clock=lambda: now[0], sleep=sleep)
        other.limiter.hold_off(5)
        other.call(METHOD, {"stockout_no": "CK-NONE"})
        assert slept[-1] == pytest.approx(5)


@ERROR_SHAPES
def test_throttling_longer_than_allowed_fails(tmp_path, top_error_shape):
    from emulators.wdt import make_server

    with serving(
        make_server(
            **WDT, seed=SEED, orders=20, start=START, days=2, throttle_per_minute=1, top_error_shape=top_error_shape
        )
    ) as server:
        client = _client(server, throttle_pause_seconds=0.01, max_throttle_seconds=0.05)
        client.call(METHOD, {"stockout_no": "CK-NONE"})
        with pytest.raises(WdtTransientError, match="code 1012"):
            client.call(METHOD, {"stockout_no": "CK-NONE"})


def test_the_client_keeps_its_distance_between_calls(wdt_emulator, tmp_path):
    ticks, slept = [1000.0], []
    client = WdtClient(
        WdtConfig(**WDT, url=wdt_emulator.url, min_interval_seconds=1.0, rate_limit_url=str(tmp_path / "r.sqlite")),
        clock=lambda: ticks[0],
        sleep=lambda s: slept.append(s),
    )
    client.call(METHOD, {"stockout_no": "CK-NONE"})
    ticks[0] += 0.25
    client.call(METHOD, {"stockout_no": "CK-NONE"})
    assert slept == [0.75]


# Redis and PostgreSQL are this machine's services (.ci/run starts them): their cases run in the deploy
# group with the deployment that shares them (make test-slow); the default suite needs Python only.
SHARED_BACKENDS = [pytest.param(backend, marks=pytest.mark.deploy) for backend in ("redis", "postgresql")]


@pytest.mark.parametrize("backend", ["sqlite", *SHARED_BACKENDS])
def test_the_rate_is_shared_by_every_process_using_the_limiter(backend, request, tmp_path):
    """Three processes take 8 slots each on one app key: all 24 slots are at least 50 ms apart, whether
    the slots live in a machine's SQLite file or in the Redis or PostgreSQL every host reaches."""
    import subprocess
    import sys
    import uuid

    url = {
        "sqlite": lambda: str(tmp_path / "rate.sqlite"),
        "redis": lambda: request.getfixturevalue("redis_url"),
        "postgresql": lambda: request.getfixturevalue("postgres_url"),
    }[backend]()
    code = (
        "import sys, time\n"
        "from erpsync.wdt.ratelimit import open_limiter\n"
        "limiter = open_limiter(sys.argv[1], sys.argv[2], 0.05)\n"
        "for _ in range(8):\n"
        "    print(repr(limiter.acquire()), flush=True)\n"
    )
    app_key = f"app-key-{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, app_key], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    stamps = sorted(float(line) for p in procs for line in p.communicate()[0].split())
    assert len(stamps) == 24
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.05 - 1e-5, gaps  # epoch seconds as text or doubles: microseconds of rounding


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
def test_a_throttle_answer_holds_off_every_host(backend, request):
    """After hold_off(0.5) the next slot is half a second away, on the server's clock."""
    import uuid

    from erpsync.wdt.ratelimit import open_limiter

    url = request.getfixturevalue(f"{backend}_url" if backend == "redis" else "postgres_url")
    slept: list[float] = []
    limiter = open_limiter(url, f"app-key-{uuid.uuid4().hex}", 0.01, sleep=slept.append)
    try:
        limiter.acquire()
        limiter.hold_off(0.5)
        limiter.acquire()
    finally:
        limiter.close()
    assert slept and 0.4 < slept[-1] <= 0.5, slept


def test_an_unreachable_or_unknown_limiter_is_named_without_its_password():
    from erpsync.connections import ConnectionConfigError
    from erpsync.wdt.ratelimit import RateLimiterError, open_limiter

    with pytest.raises(ConnectionConfigError, match="wdt_rate_limit_url"):
        open_limiter("mysql://u:secret@db/x", "k", 1)
    limiter = open_limiter("redis://:hunter2@127.0.0.1:1/0", "k", 1)
    with pytest.raises(RateLimiterError) as caught:
        limiter.acquire()
    assert "redis://:***@127.0.0.1:1/0" in str(caught.value) and "hunter2" not in str(caught.value)


def test_extract_reads_every_completed_order_of_the_window(wdt_emulator, dataset, tmp_path):
    window = _window("2026-11-01", "2026-11-04")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    client = _client(wdt_emulator)
    scheme = _with_page_size(7)  # many pages: page 0 first, then the rest backwards
    result = extract(run_of(scheme, files), WdtReader(client, scheme.source))

    orders, lines = read_parquet(files.orders), read_parquet(files.lines)
    assert set(orders["order_no"]) == _expected(dataset, window)
    assert result.orders == len(orders) and result.lines == len(lines)
    assert result.calls == -(-result.orders // 7) + 1  # every page once, and page 0 again for the count
    # every response field is kept, including the whole of the user's response table
    assert set(SCHEME.source.api.order_fields) <= set(orders.columns)
    summary = json.loads(files.extract_summary.read_text())
    assert (summary["orders"], summary["calls"], summary["pages"]) == (result.orders, result.calls, result.calls)
    assert summary["read"]["start"] == "2026-10-31T22:00:00+08:00"  # the 2h look-back
    assert {"goods_count", "sell_price", "batch_no", "product_date", "src_tid"} <= set(lines.columns)
    assert all(dtype == "string" for dtype in orders.dtypes)
    source = {o["order_no"]: o for o in dataset.orders}
    for row in orders.head(5).itertuples():
        assert row.goods_total_amount == source[row.order_no]["goods_total_amount"]
    assert set(lines["stockout_id"]) == set(orders["stockout_id"])


BATCH_FIELDS = ("batch_no", "product_date", "expire_date")


@pytest.mark.parametrize("batch_fields", [False, True], ids=["batch-absent", "batch-present"])
def test_the_scheme_works_with_line_batch_fields_absent_or_present(batch_fields, dataset, tmp_path):
    """The lines' batch fields are unconfirmed for 企业版 (the emulator leaves them out by default): the
    extract stages their columns either way, and the scheme's FProduceDate ({{batch_details.product_date}})
    is sent only when WDT gave a real date."""
    from emulators.wdt import make_server
    from erpsync.staging import read_jsonl
    from erpsync.steps.transform import transform
    from erpsync.steps.validate import validate

    window = _window("2026-11-01", "2026-11-04")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    with serving(make_server(**WDT, seed=SEED, orders=60, start=START, days=3, batch_fields=batch_fields)) as server:
        result = extract(run_of(SCHEME, files), WdtReader(_client(server), SCHEME.source))
    lines = read_parquet(files.lines)
    assert result.orders and set(BATCH_FIELDS) <= set(lines.columns)
    dated = lines["product_date"].dropna()
    if batch_fields:
        assert (dated != "0000-00-00 00:00:00").any() and lines["batch_no"].notna().all()
    else:
        assert dated.empty and all(lines[f].isna().all() for f in BATCH_FIELDS)
    validate(run_of(SCHEME, files))
    built = transform(run_of(SCHEME, files))
    bills = read_jsonl(files.bills)
    assert built.bills == len(bills) > 0 and built.unmapped == 0
    text = json.dumps(bills, ensure_ascii=False)
    assert ("FProduceDate" in text) == batch_fields


@pytest.mark.parametrize("privacy", ["absent", "masked"])
def test_taobao_buyers_data_absent_or_masked_is_staged_as_given(privacy, tmp_path):
    """Qimen does not hand out 淘系 buyers' personal data: by default the emulator leaves the fields out
    (staged as null), or masks them; other platforms' orders carry them in plain either way."""
    from emulators.wdt import make_server

    window = _window("2026-11-01", "2026-11-04")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    with serving(make_server(**WDT, seed=SEED, orders=60, start=START, days=3, privacy=privacy)) as server:
        extract(run_of(SCHEME, files), WdtReader(_client(server), SCHEME.source))
    orders = read_parquet(files.orders)
    taobao, others = orders[orders["platform_id"] == "1"], orders[orders["platform_id"] != "1"]
    assert len(taobao) and len(others)
    assert others["receiver_name"].notna().all() and not others["receiver_name"].str.contains("*", regex=False).any()
    if privacy == "absent":
        assert taobao["receiver_name"].isna().all() and taobao["receiver_mobile"].isna().all()
        assert taobao["nick_name"].isna().all() and taobao["receiver_province"].notna().all()
    else:
        assert (
            taobao["receiver_name"].str.endswith("**").all()
            and taobao["receiver_mobile"].str.contains("****", regex=False).all()
        )


def test_extract_of_a_window_with_no_orders_writes_empty_files(wdt_emulator, tmp_path):
    window = _window("2025-01-01", "2025-01-02")
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    result = extract(run_of(SCHEME, files), WdtReader(_client(wdt_emulator), SCHEME.source))
    assert result.orders == 0 and read_parquet(files.orders).empty
    assert "order_no" in read_parquet(files.orders).columns


def test_a_long_window_is_read_in_sub_windows(wdt_emulator, dataset, tmp_path):
    window = _window("2026-10-01", "2026-11-04")  # 34 days: more than the API's 30
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
    result = extract(run_of(SCHEME, files), WdtReader(_client(wdt_emulator), SCHEME.source))
    assert result.sub_windows == 2
    assert set(read_parquet(files.orders)["order_no"]) == _expected(dataset, window)


def test_filters_narrow_a_run_and_get_their_own_folder(wdt_emulator, dataset, tmp_path):
    window = _window("2026-11-01", "2026-11-04")
    filters = {"shop_no": "FENXIAO004"}
    files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window, filters)
    assert files.dir.name == f"window={window.key},filters={filters_digest(filters)}"
    extract(run_of(SCHEME, files, filters), WdtReader(_client(wdt_emulator), SCHEME.source))
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
        request_params(SCHEME.source, _window("2026-11-01", "2026-11-02"), filters)


def test_good_filters_reach_the_request():
    params = request_params(
        SCHEME.source, _window("2026-11-01", "2026-11-02"), {"shop_no": "FENXIAO004", "src_tid": "天猫-123_4"}
    )
    assert (params["shop_no"], params["src_tid"], params["status"]) == ("FENXIAO004", "天猫-123_4", "110")


def test_paging_that_keeps_losing_orders_is_an_error():
    pages = {
        0: {"total_count": "3", "stockout_list": [{"stockout_id": "1"}, {"stockout_id": "2"}]},
        1: {"stockout_list": [{"stockout_id": "2"}]},
    }  # order 3 slid away while we read, every time
    with pytest.raises(
        PagingError, match=r"changed while they were paged \(3 announced, 3 at the end, 2 distinct read\) in 3 passes"
    ):
        list(PAGINATOR.orders(lambda page, size: pages[page], "test"))


def test_a_pass_that_changed_is_read_again_and_nothing_is_yielded_twice():
    """An order inserted in the middle while paging shifts the later pages: the second pass finds it."""
    data = [{"stockout_id": str(i)} for i in (1, 2, 4, 5)]
    calls = []

    def fetch(page_no: int, size: int) -> dict:
        calls.append(page_no)
        if len(calls) == 3:  # after pages 0 and 1 were read, order 3 arrives in the middle
            data.insert(2, {"stockout_id": "3"})
        page = {"stockout_list": data[page_no * size : (page_no + 1) * size]}
        return {**page, "total_count": str(len(data))} if page_no == 0 else page

    got = [o["stockout_id"] for o in PAGINATOR.orders(fetch, "test")]
    assert sorted(got) == ["1", "2", "3", "4", "5"] and len(got) == len(set(got))
    assert calls[:3] == [0, 1, 0] and len(calls) > 3  # the count changed: a second pass


def test_an_order_without_its_key_is_an_error():
    page = {"total_count": "1", "stockout_list": [{"order_no": "CK1"}]}
    with pytest.raises(PagingError, match="order 'CK1' has no stockout_id"):
        list(PAGINATOR.orders(lambda page_no, size: page, "test"))


def _with_page_size(size: int):
    return SCHEME.edited("source.pagination.page_size", size)


def test_paging_while_the_data_changes_skips_no_order_and_doubles_none(dataset, tmp_path, caplog):
    """The emulator changes the window's orders on every page read (churn): orders complete inside the
    window while it is paged. The extract still ends with exactly the orders WDT holds for the window."""
    import logging

    from emulators.wdt import make_server

    scheme = SCHEME.edited("source.pagination.page_size", 3)
    window = _window("2026-11-02", "2026-11-03")
    clock = parse_datetime("2026-11-02T18:00:00", "now")  # the run reads while the day goes on
    with serving(make_server(**WDT, seed=SEED, orders=60, start=START, days=3, churn_rate=1.0, now=clock)) as server:
        server.emulator.set_now(clock)
        files = RunFiles(ObjectStoragePath(tmp_path.as_uri()), SCHEME.dag_id, window)
        with caplog.at_level(logging.WARNING, logger="erpsync.wdt.paging"):
            for _retry in range(10):  # a window that kept changing fails its task; Airflow runs it again
                try:
                    result = extract(run_of(scheme, files), WdtReader(_client(server), scheme.source))
                    break
                except PagingError:
                    continue
        start, end = api_bounds(Window(window.start - scheme.source.lookback, window.end), scheme.source.api)
        truth = {
            o["order_no"] for o in server.emulator.orders() if o["status"] == 110 and start <= o["modified"] <= end
        }
    orders = read_parquet(files.orders)
    assert len(orders) == orders["stockout_id"].nunique() == result.orders  # none doubled
    assert set(orders["order_no"]) == truth and truth  # none skipped
    assert "reading the pages again" in caplog.text  # the data did change under the paging
