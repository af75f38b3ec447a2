"""The WDT emulator's direct openapi2 endpoint, black-box over loopback HTTP.

Requests are signed by the small signer below, written from spec §3.1 and independent of the
emulator's code (nothing of ``emulators.wdt.openapi2`` is imported), and checked against the spec's
worked example (§3.2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators.wdt import OPENAPI2_ROUTES, make_server
from tests.conftest import serving
from tests.emulators.test_wdt_emulator import (
    APP_KEY,
    DAYS,
    ORDERS,
    ROOT,
    SECRET,
    SEED,
    SID,
    START,
    TARGET,
    call,
    md5_sign,
    system_params,
    window,
)

APPKEY, APPSECRET = "direct-appkey", "direct-secret-1"
FILE = "stockout_order_query_trade.php"
TAOBAO = 1


# -- independent signer (spec §3.1) ----------------------------------------------------------------------
def wdt_pack(params: dict[str, str], length: Callable[[str], int] = len) -> str:
    return ";".join(f"{len(k):02d}-{k}:{length(v):04d}-{v}" for k, v in sorted(params.items()) if k != "sign")


def wdt_sign(params: dict[str, str], secret: str, length: Callable[[str], int] = len) -> str:
    return hashlib.md5((wdt_pack(params, length) + secret).encode("utf-8")).hexdigest()


def byte_length(value: str) -> int:
    """What one PyPI client uses instead of the character count (spec §3.1 caution)."""
    return len(value.encode("utf-8"))


def signed(
    business: dict[str, Any], *, secret: str = APPSECRET, length: Callable[[str], int] = len, **identity: str
) -> dict[str, str]:
    params = {"sid": SID, "appkey": APPKEY, "timestamp": str(int(time.time())), **identity}
    params.update({k: str(v) for k, v in business.items()})
    params["sign"] = wdt_sign(params, secret, length)
    return params


def post(base: str, params: dict[str, str], file: str = FILE) -> dict[str, Any]:
    r = requests.post(base + file, data=params, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json;charset=UTF-8"
    return r.json()


def direct(base: str, business: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return post(base, signed(business, **kwargs))


def read_all(base: str, business: dict[str, Any], size: int = 7) -> tuple[list[dict[str, Any]], int]:
    first = direct(base, {**business, "page_no": 0, "page_size": size})
    assert first["code"] == 0, first
    rows, page = list(first["stockout_list"]), 1
    while len(rows) < first["total_count"]:
        body = direct(base, {**business, "page_no": page, "page_size": size})
        assert body["code"] == 0 and body["stockout_list"], body
        rows += body["stockout_list"]
        page += 1
    return rows, first["total_count"]


def qimen_all(url: str, business: dict[str, Any]) -> list[dict[str, Any]]:
    rows, page = [], 0
    while True:
        body = call(url, {**business, "page_no": page, "page_size": 100})
        assert body["flag"] == "success", body
        rows += body["stockout_list"]
        if len(body["stockout_list"]) < 100:
            return rows
        page += 1


def serve(**options: Any) -> Any:
    options = {
        "seed": SEED,
        "orders": ORDERS,
        "start": START,
        "days": DAYS,
        "app_key": APP_KEY,
        "app_secret": SECRET,
        "target_app_key": TARGET,
        "sid": SID,
        "openapi2_appkey": APPKEY,
        "openapi2_appsecret": APPSECRET,
        **options,
    }
    return serving(make_server("127.0.0.1", 0, **options))


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve() as srv:
        yield srv


@pytest.fixture(scope="module")
def base(server: Any) -> str:
    return server.openapi2_url


# -- routes and signature --------------------------------------------------------------------------------
def test_the_base_url_is_the_gateway_host_under_openapi2(server: Any) -> None:
    assert server.openapi2_url == server.url.removesuffix("/router/qm") + "/openapi2/"
    assert OPENAPI2_ROUTES[FILE] == "wdt.stockout.order.query.trade"


def test_the_spec_worked_example_is_accepted() -> None:
    """§3.2: the documented parameters, appsecret 12345, at the documented time; the emulator's default
    openapi2 identity is that example's (appkey test2-xx, sid test2)."""
    params = {
        "appkey": "test2-xx",
        "page_no": "0",
        "end_time": "2016-08-01 13:00:00",
        "start_time": "2016-08-01 12:00:00",
        "page_size": "40",
        "sid": "test2",
        "timestamp": "1470042310",
    }
    assert wdt_pack(params) == (
        "06-appkey:0008-test2-xx;08-end_time:0019-2016-08-01 13:00:00;07-page_no:0001-0;09-page_size:0002-40;"
        "03-sid:0005-test2;10-start_time:0019-2016-08-01 12:00:00;09-timestamp:0010-1470042310"
    )
    assert wdt_sign(params, "12345") == "ad4e6fe037ea6e3ba4768317be9d1309"
    with serving(make_server("127.0.0.1", 0, orders=20, days=2, clock=lambda: 1470042310 + 30)) as srv:
        for sign in ("ad4e6fe037ea6e3ba4768317be9d1309", "AD4E6FE037EA6E3BA4768317BE9D1309"):
            body = post(srv.openapi2_url, {**params, "sign": sign})
            assert body == {"code": 0, "message": "", "total_count": 0, "stockout_list": []}
        wrong = post(srv.openapi2_url, {**params, "sign": wdt_sign(params, "54321")})
        assert wrong["code"] == 100 and wrong["message"].startswith("无效sign")
        assert set(wrong) == {"code", "message"}


def test_lengths_are_characters_not_bytes(base: str) -> None:
    business = {**window(0, 0), "shop_no": "店铺A"}
    assert "07-shop_no:0003-店铺A" in wdt_pack(signed(business))
    assert "07-shop_no:0007-店铺A" in wdt_pack(signed(business), byte_length)
    assert direct(base, business) == {"code": 0, "message": "", "total_count": 0, "stockout_list": []}
    refused = direct(base, business, length=byte_length)
    assert refused["code"] == 100 and refused["message"].startswith("无效sign")
    assert direct(base, {**window(0, 0), "shop_no": "JD002"}, length=byte_length)["code"] == 0  # ASCII: same


def test_a_long_value_keeps_its_full_length(base: str) -> None:
    long = "A" * 10001  # wider than %04d: written in full
    assert f"11-stockout_no:10001-{long}" in wdt_pack(signed({"stockout_no": long}))
    assert direct(base, {"stockout_no": long})["code"] == 0


@pytest.mark.parametrize("secret", ["wrong-secret", APPSECRET.upper(), APPSECRET + " "])
def test_a_wrong_secret_is_refused(base: str, secret: str) -> None:
    body = direct(base, window(0, 0), secret=secret)
    assert body == {"code": 100, "message": "无效sign: 签名错误"}


def test_everything_received_is_signed(base: str) -> None:
    params = signed(window(0, 0))
    unsigned_extra = {**params, "warehouse_no": ""}  # an empty value the signer did not see
    assert post(base, unsigned_extra)["message"].startswith("无效sign")
    with_empty = signed({**window(0, 0), "warehouse_no": ""})  # signed with it: accepted (counts as absent)
    assert post(base, with_empty)["code"] == 0


# -- identity and timestamp ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({"sid": "someone-else"}, "无效sid: someone-else"),
        ({"sid": ""}, "缺少参数sid"),
        ({"appkey": "other-key"}, "无效appkey: other-key"),
        ({"appkey": ""}, "缺少参数appkey"),
        ({"appkey": APP_KEY}, f"无效appkey: {APP_KEY}"),  # the Qimen app key is not a WDT appkey
        ({"timestamp": ""}, "无效timestamp"),
        ({"timestamp": str(int(time.time() * 1000))}, "无效timestamp"),  # milliseconds
        ({"timestamp": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")}, "无效timestamp"),
        ({"timestamp": f" {int(time.time())}"}, "无效timestamp"),
    ],
)
def test_identity_refusals(base: str, identity: dict[str, str], message: str) -> None:
    body = direct(base, window(0, 0), **identity)
    assert body["code"] == 100 and body["message"].startswith(message) and set(body) == {"code", "message"}


def test_a_missing_sign_is_refused(base: str) -> None:
    params = signed(window(0, 0))
    del params["sign"]
    assert post(base, params) == {"code": 100, "message": "无效sign: 缺少参数sign"}


def test_the_timestamp_may_be_five_minutes_off() -> None:
    now = [time.time()]
    with serve(clock=lambda: now[0], orders=20) as srv:  # whole seconds count, as PHP's time() does
        for offset, ok in ((-300, True), (300, True), (-301, False), (301, False)):
            body = direct(srv.openapi2_url, window(0, 0), timestamp=str(int(now[0]) + offset))
            assert (body["code"] == 0) == ok, (offset, body)
            if not ok:
                assert body["message"].startswith("无效timestamp") and "300秒" in body["message"]
    with serve(clock=lambda: now[0], orders=20, openapi2_timestamp_tolerance_s=10) as srv:
        assert direct(srv.openapi2_url, window(0, 0), timestamp=str(int(now[0]) - 11))["code"] == 100


# -- the same data as Qimen, without 淘系 ----------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, {"batch_fields": True, "privacy": "masked"}])
def test_the_same_orders_as_qimen_except_taobao(options: dict[str, Any]) -> None:
    with serve(**options) as srv:
        business = {**window(0, 4), "status": 110, "is_by_modified": 1}
        qimen = qimen_all(srv.url, business)
        rows, total = read_all(srv.openapi2_url, business)
    assert any(o["platform_id"] == TAOBAO for o in qimen)
    expected = [o for o in qimen if o["platform_id"] != TAOBAO]
    assert rows == expected and total == len(expected) > 7  # identical orders, privacy fields plain
    assert all("*" not in o["receiver_name"] and o["receiver_mobile"] for o in rows)
    lines = [line for o in rows for line in o["details_list"]]
    assert all(("product_date" in line) == bool(options) for line in lines)  # batch_fields: both paths


def test_a_taobao_order_is_not_returned_even_by_number(server: Any, base: str) -> None:
    taobao = next(o for o in server.emulator.orders() if o["platform_id"] == TAOBAO)
    other = next(o for o in server.emulator.orders() if o["platform_id"] != TAOBAO)
    assert call(server.url, {"stockout_no": taobao["stockout_no"]})["total_count"] == 1
    assert direct(base, {"stockout_no": taobao["stockout_no"]}) == {
        "code": 0,
        "message": "",
        "total_count": 0,
        "stockout_list": [],
    }
    found = direct(base, {"src_order_no": other["src_order_no"]})
    assert found["total_count"] == 1 and found["stockout_list"][0]["stockout_id"] == other["stockout_id"]


def test_total_count_on_page_zero_only_unless_asked(base: str) -> None:
    second = direct(base, {**window(0, 4), "page_no": 1, "page_size": 5})
    assert second["code"] == 0 and "total_count" not in second and len(second["stockout_list"]) == 5
    with serve(total_count_every_page=True) as srv:
        again = direct(srv.openapi2_url, {**window(0, 4), "page_no": 1, "page_size": 5})
        assert again["total_count"] > 5


@pytest.mark.parametrize(
    ("business", "code"),
    [
        ({**window(0, 0), "page_size": 0}, 100),
        ({**window(0, 0), "page_size": 101}, 100),
        ({**window(0, 0), "status": 7}, 100),
        ({"start_time": "2026-11-01 00:00:00", "end_time": "2026-12-01 00:00:01"}, 100),
        ({"start_time": "2026/11/01 00:00:00", "end_time": "2026-11-01 23:59:59"}, 100),
        ({"status": 110}, 2900),
        ({}, 2900),
    ],
)
def test_parameter_errors(base: str, business: dict[str, Any], code: int) -> None:
    body = direct(base, business)
    assert body["code"] == code and body["message"] and set(body) == {"code", "message"}


def test_the_clock_is_shared(server: Any, base: str) -> None:
    order = next(o for o in server.emulator.orders() if o["platform_id"] != TAOBAO and o["status"] == 110)
    created = dt.datetime.strptime(order["created"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    try:
        server.emulator.set_now(created - dt.timedelta(seconds=1))
        assert direct(base, {"stockout_no": order["stockout_no"]})["total_count"] == 0
        server.emulator.set_now(created + dt.timedelta(seconds=1))
        [early] = direct(base, {"stockout_no": order["stockout_no"]})["stockout_list"]
        assert early["status"] == 55
    finally:
        server.emulator.set_now(dt.datetime.now(dt.UTC), running=True)


# -- HTTP ------------------------------------------------------------------------------------------------
def test_wire_layouts(base: str) -> None:
    params = signed({**window(0, 1), "page_size": 40})
    url = base + FILE
    reference = post(base, params)
    assert reference["code"] == 0 and reference["total_count"] > 0
    # $_REQUEST: the URL query counts, signed like the rest; the body wins
    assert requests.post(url, params=params, timeout=5).json() == reference
    half = dict(list(params.items())[:3])
    assert (
        requests.post(url, params=half, data={k: v for k, v in params.items() if k not in half}, timeout=5).json()
        == reference
    )
    assert requests.post(url, params={**params, "page_size": "0"}, data=params, timeout=5).json() == reference
    assert requests.post(url, files={k: (None, v) for k, v in params.items()}, timeout=5).json() == reference
    # a JSON body is not $_POST
    assert requests.post(url, json=params, timeout=5).json() == {"code": 100, "message": "缺少参数sid"}


def test_get_and_unknown_files_are_http_errors(base: str) -> None:
    params = signed(window(0, 0))
    get = requests.get(base + FILE, params=params, timeout=5)
    assert get.status_code == 405 and get.headers["Allow"] == "POST"
    for file in ("his_stockout_order_query_trade.php", "trade_query.php", "", "stockout_order_query_trade"):
        assert requests.post(base + file, data=params, timeout=5).status_code == 404


# -- faults ----------------------------------------------------------------------------------------------
def test_throttle_per_appkey_apart_from_qimen() -> None:
    with serve(throttle_per_minute=2) as srv:
        assert [direct(srv.openapi2_url, window(0, 0))["code"] for _ in range(3)] == [0, 0, 1012]
        body = direct(srv.openapi2_url, window(0, 0))
        assert body == {"code": 1012, "message": "系统调用频繁,请稍后再试"}
        assert call(srv.url, window(0, 0))["flag"] == "success"  # the Qimen app key has its own budget
        refused = srv.gateway.throttle.refused
    assert refused == {f"openapi2:{APPKEY}": 2}


def test_5xx_faults_and_latency_as_on_qimen() -> None:
    with serve(error_rate=1.0) as srv:
        answers = [requests.post(srv.openapi2_url + FILE, data=signed(window(0, 0)), timeout=5) for _ in range(10)]
        qimen = requests.get(srv.url, params={**system_params(), "sign": "x"}, timeout=5)
    assert {r.status_code for r in answers} <= {500, 502, 503} and len({r.status_code for r in answers}) > 1
    for r in [*answers, qimen]:
        assert not r.headers["Content-Type"].startswith("application/json") and str(r.status_code) in r.text
    with serve(latency_ms=250) as srv:
        started = time.monotonic()
        assert direct(srv.openapi2_url, window(0, 0))["code"] == 0
        assert time.monotonic() - started >= 0.25


def test_both_paths_draw_from_one_fault_sequence() -> None:
    def qimen_call(url: str) -> int:
        params = {**system_params(), **window(0, 0)}
        params["sign"] = md5_sign(params, SECRET)
        return requests.get(url, params=params, timeout=5).status_code

    with serve(error_rate=0.4) as srv:
        only_qimen = [qimen_call(srv.url) for _ in range(20)]
    with serve(error_rate=0.4) as srv:
        mixed = [
            qimen_call(srv.url)
            if i % 2
            else requests.post(srv.openapi2_url + FILE, data=signed(window(0, 0)), timeout=5).status_code
            for i in range(20)
        ]
    assert mixed == only_qimen and 200 in mixed and set(mixed) - {200}


def test_churn_touches_only_what_the_direct_endpoint_shows() -> None:
    now = dt.datetime(2026, 11, 2, 18, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with serve(churn_rate=1.0, now=now, orders=60, days=3) as srv:
        srv.emulator.set_now(now)
        before = {o["stockout_id"]: o["modified"] for o in srv.emulator.orders()}
        business = {"start_time": "2026-11-01 00:00:00", "end_time": "2026-11-02 18:00:00", "is_by_modified": 1}
        for _ in range(5):
            assert direct(srv.openapi2_url, {**business, "page_size": 100})["code"] == 0
        after = srv.emulator.orders()
    changed = [o for o in after if o["modified"] != before.get(o["stockout_id"])]
    assert changed and all(o["platform_id"] != TAOBAO for o in changed)


# -- command line ----------------------------------------------------------------------------------------
def test_cli_serves_openapi2_next_to_qimen() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.wdt",
            "--port",
            "0",
            "--app-key",
            APP_KEY,
            "--app-secret",
            SECRET,
            "--target-app-key",
            TARGET,
            "--sid",
            SID,
            "--openapi2-appkey",
            APPKEY,
            "--openapi2-appsecret",
            APPSECRET,
            "--seed",
            str(SEED),
            "--orders",
            "30",
            "--start",
            str(START),
            "--days",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        qimen_url = proc.stdout.readline().strip()
        assert qimen_url.endswith("/router/qm")
        base = qimen_url.removesuffix("/router/qm") + "/openapi2/"
        assert f"openapi2 at {base}" in proc.stderr.readline()
        body = direct(base, window(0, 1))
        assert body["code"] == 0 and body["total_count"] > 0
        assert call(qimen_url, window(0, 1))["flag"] == "success"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
