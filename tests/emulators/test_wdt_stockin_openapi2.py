"""The stock-in queries on the WDT emulator's direct openapi2 endpoint
(``/openapi2/stockin_order_query_refund.php``, ``stockin_order_query_purchase.php`` and the archive
``his_stockin_order_query_refund.php``), black-box over loopback HTTP.

Requests are signed by the small signer below, written from the stockout spec §3.1 (length-prefixed
``%02d-key:%04d-value`` joined by ``;``, md5 of it + appsecret, lengths in characters) and independent of
the emulator's code.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.stockins import build_stockin_data
from tests.emulators.test_wdt_stockin import (
    DAYS,
    EVERY_STATUS,
    NOW,
    ORDERS,
    PURCHASE,
    REFUND,
    SEED,
    SID,
    START,
    WHOLE,
    qimen,
    serve,
)

APPKEY, APPSECRET = "stockin-direct", "stockin-direct-secret"
FILES = {REFUND: "stockin_order_query_refund.php", PURCHASE: "stockin_order_query_purchase.php"}
ARCHIVE = "his_stockin_order_query_refund.php"


def wdt_sign(params: dict[str, str], secret: str) -> str:
    packed = ";".join(f"{len(k):02d}-{k}:{len(v):04d}-{v}" for k, v in sorted(params.items()) if k != "sign")
    return hashlib.md5((packed + secret).encode("utf-8")).hexdigest()


def direct(base: str, file: str, business: dict[str, Any], *, secret: str = APPSECRET) -> dict[str, Any]:
    params = {"sid": SID, "appkey": APPKEY, "timestamp": str(int(time.time()))}
    params.update({k: str(v) for k, v in business.items()})
    params["sign"] = wdt_sign(params, secret)
    r = requests.post(base + file, data=params, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json;charset=UTF-8"
    return r.json()


def read_all(base: str, file: str, business: dict[str, Any], size: int = 6) -> list[dict[str, Any]]:
    first = direct(base, file, {**business, "page_no": 0, "page_size": size})
    assert first["code"] == 0 and first["message"] == "", first
    rows, page = list(first["stockin_list"]), 1
    while len(rows) < first["total_count"]:
        body = direct(base, file, {**business, "page_no": page, "page_size": size})
        assert body["code"] == 0 and body["stockin_list"] and "total_count" not in body, body
        rows += body["stockin_list"]
        page += 1
    return rows


def serve_direct(**options: Any) -> Any:
    return serve(openapi2_appkey=APPKEY, openapi2_appsecret=APPSECRET, now=NOW, **options)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve_direct() as srv:
        srv.emulator.set_now(NOW)
        yield srv


@pytest.fixture(scope="module")
def base(server: Any) -> str:
    return server.openapi2_url


@pytest.fixture(scope="module")
def truth() -> Any:
    return build_stockin_data(SEED, ORDERS, START, DAYS)


def test_refunds_page_by_page_without_taobao(base: str, truth: Any) -> None:
    everything = read_all(base, FILES[REFUND], {**WHOLE, "status": EVERY_STATUS[REFUND]})
    # "本接口不返回淘系…订单数据": no 淘系 shop's stock-in, the others exactly as stored (plain fields)
    assert everything == [r for r in truth.refunds if r["platform_id"] != 1]
    assert any(r["platform_id"] == 1 for r in truth.refunds)
    done = read_all(base, FILES[REFUND], WHOLE)
    assert done == [r for r in truth.refunds if r["platform_id"] != 1 and r["status"] == 80]
    # a 淘系 stock-in is not found by its number either, and total_count does not count it
    taobao = next(r for r in truth.refunds if r["platform_id"] == 1 and r["status"] == 80)
    body = direct(base, FILES[REFUND], {"stockin_no": taobao["order_no"]})
    assert body == {"code": 0, "message": "", "total_count": 0, "stockin_list": []}


def test_purchases_page_by_page(base: str, truth: Any) -> None:
    assert read_all(base, FILES[PURCHASE], {**WHOLE, "status": EVERY_STATUS[PURCHASE]}) == truth.purchases
    assert read_all(base, FILES[PURCHASE], WHOLE) == [p for p in truth.purchases if p["status"] == "80"]


def test_both_transports_agree(server: Any, truth: Any) -> None:
    for method, file in FILES.items():
        via_qimen = qimen(server.url, method, {**WHOLE, "page_size": 100})["stockin_list"]
        via_direct = direct(server.openapi2_url, file, {**WHOLE, "page_size": 100})["stockin_list"]
        assert via_direct == [s for s in via_qimen if s.get("platform_id") != 1]


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_parameter_errors_are_flat(base: str, method: str) -> None:
    file = FILES[method]
    assert direct(base, file, {}) == {"code": 2900, "message": "时间范围与入库单号不能全部为空"}
    body = direct(base, file, {"start_time": "2026-11-01 00:00:00", "end_time": "2026-12-01 00:00:01"})
    assert body["code"] == 100 and "stockin_list" not in body
    assert direct(base, file, {**WHOLE, "status": "99"})["code"] == 100
    assert direct(base, file, {**WHOLE, "page_size": 101})["code"] == 100


def test_a_wrong_signature_is_refused(base: str) -> None:
    for file in (*FILES.values(), ARCHIVE):
        assert direct(base, file, WHOLE, secret="wrong") == {"code": 100, "message": "无效sign: 签名错误"}


def test_the_archive_validates_and_holds_nothing(base: str) -> None:
    assert direct(base, ARCHIVE, WHOLE) == {"code": 0, "message": "", "total_count": 0, "stockin_list": []}
    assert direct(base, ARCHIVE, {}) == {"code": 2900, "message": "时间范围与入库单号不能全部为空"}


def test_routes_post_only_and_unknown_files(base: str) -> None:
    assert requests.get(base + FILES[REFUND], timeout=5).status_code == 405
    for file in ("stockin_order_query.php", "his_stockin_order_query_purchase.php", "stockin_order_query_refund"):
        assert requests.post(base + file, data={"sid": SID}, timeout=5).status_code == 404


def test_rate_limit_and_5xx_apply() -> None:
    with serve_direct(throttle_per_minute=2) as srv:
        codes = [direct(srv.openapi2_url, file, WHOLE)["code"] for file in (FILES[REFUND], FILES[PURCHASE], ARCHIVE)]
    assert codes == [0, 0, 1012]
    with serve_direct(error_rate=1.0) as srv:
        statuses = {requests.post(srv.openapi2_url + file, data={}, timeout=5).status_code for file in FILES.values()}
    assert statuses <= {500, 502, 503} and statuses
