"""Black-box tests of the WDT Qimen emulator over real loopback HTTP, plus its data set.

Requests are signed by the small md5/hmac signer below, written from spec §2.3 and independent of the
server's code, so that a bug in the server's signer cannot hide behind the same bug in the tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from emulators.dataset import UNKNOWN_SKU, build_dataset
from emulators.wdt import make_server, verify_signature
from tests.conftest import serving

APP_KEY, SECRET, TARGET, SID = "emu-app", "emu-secret", "21363512", "emu-sid"
SEED, ORDERS, START, DAYS = 11, 120, dt.date(2026, 11, 1), 5
METHOD = "wdt.stockout.order.query.trade"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
ROOT = Path(__file__).resolve().parents[2]

# The "响应参数" table of the user's document: every order must carry all of these.
SEED_RESPONSE_FIELDS = """
stockout_id order_no src_order_no warehouse_no consign_time order_type trade_status order_type_name
trade_type subtype goods_count goods_total_amount goods_total_cost post_fee logistics_no package_fee
receiver_name receiver_country receiver_province receiver_city receiver_district receiver_address
receiver_mobile receiver_telno receiver_zip receiver_dtb weight logistics_type logistics_code
logistics_name print_remark paid refund_status salesman_no salesman_name fullname warehouse_name created
remark stockout_reason outer_no trade_no src_trade_no nick_name customer_name customer_no trade_time
pay_time status shop_name shop_no buyer_message cs_remark flag_name post_amount block_reason invoice_type
invoice_title invoice_content invoice_id delivery_term fenxiao_type fenxiao_nick cod_amount id_card_type
receiver_area shop_remark modified platform_id trade_id checker_name employee_no operator_name
packager_no packager_name picker_no picker_name printer_no printer_name examiner_no examiner_name
stockout_no src_order_type wms_status error_info warehouse_type warehouse_id customer_id freeze_reason
is_allocated consign_status ebill_status operator_id goods_type_count md5_str custom_type receiver_ring
to_deliver_time pre_charge_time
""".split()
SPEC_ORDER_FIELDS = "src_tids stock_check_time receivable discount tax tax_rate currency".split()
SPEC_LINE_FIELDS = """
rec_id stockout_id sale_order_id spec_no spec_id spec_name spec_code goods_id goods_no goods_name
goods_type barcode brand_no brand_name goods_count sell_price market_price cost_price total_amount
discount share_amount share_post paid tax_rate gift_type refund_status src_oid src_tid suite_no
platform_id modified batch_no product_date expire_date
""".split()


# -- independent client ------------------------------------------------------------------------------
def md5_sign(params: dict[str, str], secret: str) -> str:
    joined = "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "")
    return hashlib.md5(f"{secret}{joined}{secret}".encode()).hexdigest().upper()


def hmac_sign(params: dict[str, str], secret: str, digest: str) -> str:
    joined = "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "")
    return hmac.new(secret.encode(), joined.encode(), digest).hexdigest().upper()


def now_gmt8() -> str:
    return dt.datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def system_params(**overrides: str) -> dict[str, str]:
    params = {
        "method": METHOD,
        "app_key": APP_KEY,
        "target_app_key": TARGET,
        "sid": SID,
        "timestamp": now_gmt8(),
        "format": "json",
        "v": "2.0",
        "sign_method": "md5",
    }
    params.update(overrides)
    return params


def call(
    url: str,
    business: dict[str, Any],
    *,
    how: str = "post",
    secret: str = SECRET,
    sign: str | None = None,
    **system: str,
) -> dict[str, Any]:
    """One signed call; `how` picks the wire layout real clients use."""
    sys_params = system_params(**system)
    biz = {k: str(v) for k, v in business.items()}
    everything = {**sys_params, **biz}
    everything["sign"] = sign or md5_sign(everything, secret)
    sys_params["sign"] = everything["sign"]
    if how == "post":  # official SDK: system params in the URL, business params as a form body
        r = requests.post(url, params=sys_params, data=biz, timeout=5)
    elif how == "get":
        r = requests.get(url, params=everything, timeout=5)
    elif how == "query_post":  # everything in the URL, empty body
        r = requests.post(url, params=everything, timeout=5)
    elif how == "form":
        r = requests.post(url, data=everything, timeout=5)
    elif how == "multipart":
        r = requests.post(url, files={k: (None, v) for k, v in everything.items()}, timeout=5)
    elif how == "query_json":  # everything in the URL and a JSON copy in the body (one real client)
        r = requests.post(url, params=everything, json=everything, timeout=5)
    elif how == "chunked":
        body = urlencode(biz).encode()
        r = requests.post(
            url,
            params=sys_params,
            data=iter([body[:10], body[10:]]),
            timeout=5,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        raise AssertionError(how)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    return r.json()["response"]


def fetch_all(url: str, business: dict[str, Any], page_size: int) -> tuple[list[dict[str, Any]], int]:
    first = call(url, {**business, "page_no": 0, "page_size": page_size})
    assert first["flag"] == "success", first
    total, rows, page = first["total_count"], list(first["stockout_list"]), 1
    while len(rows) < total:
        body = call(url, {**business, "page_no": page, "page_size": page_size})
        assert body["stockout_list"], "ran out of pages before total_count"
        rows += body["stockout_list"]
        page += 1
    return rows, total


# -- fixtures ------------------------------------------------------------------------------------------
def _serve(**options: Any) -> Any:
    return serving(
        make_server(
            "127.0.0.1",
            0,
            app_key=APP_KEY,
            app_secret=SECRET,
            target_app_key=TARGET,
            sid=SID,
            seed=SEED,
            orders=ORDERS,
            start=START,
            days=DAYS,
            **options,
        )
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with _serve() as srv:
        yield srv


@pytest.fixture(scope="module")
def url(server: Any) -> str:
    return server.url


@pytest.fixture(scope="module")
def orders() -> list[dict[str, Any]]:
    return build_dataset(SEED, ORDERS, START, DAYS).orders


def window(first_day: int, last_day: int) -> dict[str, str]:
    return {
        "start_time": f"{START + dt.timedelta(days=first_day)} 00:00:00",
        "end_time": f"{START + dt.timedelta(days=last_day)} 23:59:59",
    }


def expected_ids(
    orders: list[dict[str, Any]], start: str, end: str, clock: str, statuses: set[int] | None
) -> list[int]:
    return [
        o["stockout_id"]
        for o in orders
        if start <= o[clock] <= end
        and not o[clock].startswith("0000")
        and (statuses is None or o["status"] in statuses)
    ]


# -- signature -----------------------------------------------------------------------------------------
def test_spec_worked_signature_example_is_accepted_by_the_checker() -> None:
    params = {
        "app_key": "12345678",
        "end_time": "2024-01-01 23:59:59",
        "format": "json",
        "method": METHOD,
        "page_no": "0",
        "page_size": "100",
        "sid": "test2",
        "sign_method": "md5",
        "start_time": "2024-01-01 00:00:00",
        "target_app_key": "21363512",
        "timestamp": "2024-01-01 12:00:00",
        "v": "2.0",
    }
    assert md5_sign(params, "secret") == "8986B1DEF92E8705472D6F1ACE96FD13"
    assert verify_signature({**params, "sign": "8986B1DEF92E8705472D6F1ACE96FD13"}, "secret")
    assert verify_signature({**params, "sign": "8986b1def92e8705472d6f1ace96fd13"}, "secret")
    assert not verify_signature({**params, "sign": "8986B1DEF92E8705472D6F1ACE96FD14"}, "secret")
    assert not verify_signature({**params, "sign": "8986B1DEF92E8705472D6F1ACE96FD13"}, "other")


@pytest.mark.parametrize(("sign_method", "digest"), [("hmac", "md5"), ("hmac-sha256", "sha256")])
def test_hmac_sign_methods(url: str, sign_method: str, digest: str) -> None:
    business = {**window(0, 0), "page_size": 1}
    params = {**system_params(sign_method=sign_method), **{k: str(v) for k, v in business.items()}}
    body = call(
        url, business, sign=hmac_sign(params, SECRET, digest), sign_method=sign_method, timestamp=params["timestamp"]
    )
    assert body["flag"] == "success", body


def test_empty_values_may_be_signed_or_not(url: str) -> None:
    business = {**window(0, 0), "src_tid": "", "shop_no": ""}
    skipped = call(url, business)  # md5_sign skips empty values
    everything = {**system_params(), **business}
    joined = "".join(k + v for k, v in sorted(everything.items()))
    included = hashlib.md5(f"{SECRET}{joined}{SECRET}".encode()).hexdigest().upper()
    kept = call(url, business, sign=included, timestamp=everything["timestamp"])
    assert skipped["flag"] == kept["flag"] == "success"
    assert skipped["total_count"] == kept["total_count"] > 0


# -- transport -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["post", "get", "query_post", "form", "multipart", "query_json", "chunked"])
def test_transport_layouts_give_the_same_answer(url: str, how: str) -> None:
    body = call(url, {**window(0, 1), "page_size": 100}, how=how)
    assert body["flag"] == "success" and body["errorcode"] == 0 and body["code"] == 0
    assert body["message"] == "" and body["request_id"]
    reference = call(url, {**window(0, 1), "page_size": 100})
    assert [o["stockout_id"] for o in body["stockout_list"]] == [o["stockout_id"] for o in reference["stockout_list"]]


def test_qmtest_path_and_prefixed_method(url: str) -> None:
    body = call(url.replace("/router/qm", "/router/qmtest"), window(0, 0), method=f"hu3cgwt0tc.{METHOD}")
    assert body["flag"] == "success"
    assert requests.get(url.replace("/router/qm", "/nope"), timeout=5).status_code == 404


def test_epoch_millis_timestamp_is_accepted(url: str) -> None:
    millis = str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    assert call(url, window(0, 0), timestamp=millis)["flag"] == "success"


# -- gateway and business errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"sign": "0" * 32}, 25, "Invalid signature"),
        ({"secret": "wrong"}, 25, "Invalid signature"),
        ({"app_key": "someone-else"}, 29, "Invalid App Key"),
        ({"target_app_key": "99999999"}, 41, "Invalid Arguments"),
        ({"timestamp": "2020-01-01 00:00:00"}, 31, "Invalid Timestamp"),
        ({"timestamp": "yesterday"}, 31, "Invalid Timestamp"),
        ({"method": "wdt.trade.nonexistent"}, 22, "Invalid Method"),
    ],
)
def test_gateway_errors(url: str, overrides: dict[str, str], code: int, message: str) -> None:
    body = call(url, window(0, 0), **overrides)
    assert body["flag"] == "failure" and body["code"] == code and body["message"] == message
    assert "errorcode" not in body and body["request_id"] and "stockout_list" not in body


# -- strictness: each leniency the gateway once had, with a request it used to accept -------------------
def signed_request(
    url: str, business: dict[str, Any], *, drop: tuple[str, ...] = (), **system: str
) -> requests.Response:
    """The official layout (system parameters in the URL, business ones as a form body), md5-signed
    over what is sent; `drop` leaves system parameters out."""
    sys_params = {k: v for k, v in system_params(**system).items() if k not in drop}
    biz = {k: str(v) for k, v in business.items()}
    sys_params["sign"] = md5_sign({**sys_params, **biz}, SECRET)
    return requests.post(url, params=sys_params, data=biz, timeout=5)


def xml_code(r: requests.Response) -> str | None:
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
    return ET.fromstring(r.content).findtext("code")


def test_a_json_body_is_never_read(url: str) -> None:
    everything = {**system_params(), **window(0, 0)}
    everything["sign"] = md5_sign(everything, SECRET)
    # all parameters as JSON (accepted before): no app_key as far as the gateway can see
    body = requests.post(url, params={"format": "json"}, json=everything, timeout=5).json()["response"]
    assert body["flag"] == "failure" and body["code"] == 28 and body["message"] == "Missing App Key"
    assert xml_code(requests.post(url, json=everything, timeout=5)) == "28"  # no format: XML
    # nor can a JSON body override what the query says
    copy = requests.post(url, params=everything, json={**everything, "page_size": "0"}, timeout=5)
    assert copy.json()["response"]["flag"] == "success"


def test_sign_method_is_required(url: str) -> None:
    body = signed_request(url, window(0, 0), drop=("sign_method",)).json()["response"]  # was taken as md5
    assert body["flag"] == "failure" and body["code"] == 40 and body["message"] == "Missing Required Arguments"
    assert body["sub_code"] == "isv.missing-parameter:sign_method"
    assert signed_request(url, window(0, 0)).json()["response"]["flag"] == "success"


@pytest.mark.parametrize("sign_method", ["MD5", "Md5", "HMAC", "sha1"])
def test_sign_method_values_are_case_sensitive(url: str, sign_method: str) -> None:
    body = signed_request(url, window(0, 0), sign_method=sign_method).json()["response"]  # MD5 was accepted
    assert body["flag"] == "failure" and body["code"] == 25 and body["message"] == "Invalid signature"


@pytest.mark.parametrize("fmt", ["JSON", "Json", "XML"])
def test_format_values_are_case_sensitive(url: str, fmt: str) -> None:
    assert xml_code(signed_request(url, window(0, 0), format=fmt)) == "23"  # JSON was answered in JSON


def test_epoch_seconds_are_not_a_gateway_timestamp(url: str) -> None:
    seconds = str(int(time.time()))  # accepted before; the openapi2 format, not TOP's
    body = signed_request(url, window(0, 0), timestamp=seconds).json()["response"]
    assert body["flag"] == "failure" and body["code"] == 31 and body["message"] == "Invalid Timestamp"
    millis = str(int(time.time() * 1000))
    assert signed_request(url, window(0, 0), timestamp=millis).json()["response"]["flag"] == "success"


@pytest.mark.parametrize("status", ["7", "0", "100", "95,110", "-1"])
def test_only_the_documented_statuses_are_valid(url: str, status: str) -> None:
    body = call(url, {**window(0, 0), "status": status})  # 7 was accepted (an empty list)
    assert body["flag"] == "failure" and body["errorcode"] == body["code"] == 100
    assert body["sub_code"] == "isv.invalid-parameter:status" and "status" in body["message"]


@pytest.mark.parametrize("status", [5, 55, 95, 105, 110, 113])
def test_documented_statuses_are_served(url: str, status: int) -> None:
    assert call(url, {**window(0, 4), "status": status})["flag"] == "success"


def test_stale_timestamp_just_outside_ten_minutes(url: str) -> None:
    stale = (dt.datetime.now(SHANGHAI) - dt.timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S")
    fresh = (dt.datetime.now(SHANGHAI) - dt.timedelta(minutes=9)).strftime("%Y-%m-%d %H:%M:%S")
    assert call(url, window(0, 0), timestamp=stale)["code"] == 31
    assert call(url, window(0, 0), timestamp=fresh)["flag"] == "success"


@pytest.mark.parametrize(
    ("business", "code"),
    [
        ({**window(0, 0), "page_size": 0}, 100),
        ({**window(0, 0), "page_size": 101}, 100),
        ({**window(0, 0), "page_no": -1}, 100),
        ({"start_time": "2026-11-01 00:00:00", "end_time": "2026-12-01 00:00:01"}, 100),
        ({"start_time": "2026-11-02 00:00:00", "end_time": "2026-11-01 00:00:00"}, 100),
        ({"start_time": "2026/11/01 00:00:00", "end_time": "2026-11-01 23:59:59"}, 100),
        ({"start_time": "2026-11-01 00:00:00"}, 100),
        ({"status": "110"}, 2900),
        ({}, 2900),
    ],
)
def test_business_errors(url: str, business: dict[str, Any], code: int) -> None:
    body = call(url, business)
    assert body["flag"] == "failure" and body["errorcode"] == body["code"] == code
    assert body["message"] and body["sub_code"] and "stockout_list" not in body


def test_wrong_sid_is_a_business_error(url: str) -> None:
    body = call(url, window(0, 0), sid="not-this-seller")
    assert body["flag"] == "failure" and body["errorcode"] == 100 and body["sub_code"] == "isv.invalid-sid"


def test_thirty_days_exactly_is_allowed(url: str) -> None:
    body = call(url, {"start_time": "2026-11-01 00:00:00", "end_time": "2026-12-01 00:00:00"})
    assert body["flag"] == "success"


# -- query semantics -----------------------------------------------------------------------------------
def test_pagination_returns_exactly_the_window(url: str, orders: list[dict[str, Any]]) -> None:
    w = window(1, 3)
    rows, total = fetch_all(url, w, page_size=7)
    ids = [o["stockout_id"] for o in rows]
    assert len(ids) == len(set(ids)) == total
    assert ids == expected_ids(orders, w["start_time"], w["end_time"], "consign_time", {95, 110})
    assert ids == sorted(ids)
    past_end = call(url, {**w, "page_no": total // 7 + 1, "page_size": 7})
    assert past_end["flag"] == "success" and past_end["stockout_list"] == []


def test_total_count_only_on_page_zero(url: str) -> None:
    first = call(url, {**window(0, 4), "page_size": 5})
    second = call(url, {**window(0, 4), "page_size": 5, "page_no": 1})
    assert first["total_count"] > 5
    assert "total_count" not in second and len(second["stockout_list"]) == 5


def test_total_count_on_every_page_when_asked() -> None:
    with _serve(total_count_every_page=True) as srv:
        second = call(srv.url, {**window(0, 4), "page_size": 5, "page_no": 1})
        assert second["total_count"] > 5


@pytest.mark.parametrize(
    ("business", "clock", "statuses"),
    [
        ({}, "consign_time", {95, 110}),
        ({"status": 110}, "consign_time", {110}),
        ({"status": 113}, "consign_time", {113}),
        ({"status": 95}, "consign_time", {95}),
        ({"status": 5}, "modified", {5}),
        ({"is_by_modified": 1}, "modified", None),
        ({"is_by_modified": 1, "status": 110}, "modified", {110}),
    ],
)
def test_status_selects_clock_and_statuses(
    url: str, orders: list[dict[str, Any]], business: dict[str, Any], clock: str, statuses: set[int] | None
) -> None:
    w = window(0, 4)
    rows, _ = fetch_all(url, {**w, **business}, page_size=100)
    expected = expected_ids(orders, w["start_time"], w["end_time"], clock, statuses)
    assert expected, "the data set should have such orders"
    assert [o["stockout_id"] for o in rows] == expected


def test_both_ends_are_inclusive(url: str, orders: list[dict[str, Any]]) -> None:
    target = next(o for o in orders if o["status"] == 110)
    at = target["consign_time"]
    body = call(url, {"start_time": at, "end_time": at})
    assert target["stockout_id"] in [o["stockout_id"] for o in body["stockout_list"]]
    later = (dt.datetime.fromisoformat(at) + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    body = call(url, {"start_time": later, "end_time": later})
    assert target["stockout_id"] not in [o["stockout_id"] for o in body["stockout_list"]]


PRIVACY_FIELDS = {
    "receiver_name",
    "receiver_address",
    "receiver_mobile",
    "receiver_telno",
    "nick_name",
    "customer_name",
}


def strict_shape(order: dict[str, Any]) -> dict[str, Any]:
    """An order as the default gateway hands it out: no line batch fields (unconfirmed for 企业版) and,
    on 淘系 orders, no buyer's personal data ("not provided" via Qimen)."""
    hidden = PRIVACY_FIELDS if order["platform_id"] == 1 else set()
    shaped = {k: v for k, v in order.items() if k not in hidden}
    shaped["details_list"] = [
        {k: v for k, v in line.items() if k not in {"batch_no", "product_date", "expire_date"}}
        for line in order["details_list"]
    ]
    return shaped


def test_document_numbers_alone(url: str, orders: list[dict[str, Any]]) -> None:
    target = orders[len(orders) // 2]
    taobao = next(o for o in orders if o["platform_id"] == 1)
    for order in (target, taobao):
        for key in ("stockout_no", "src_order_no"):
            body = call(url, {key: order[key]})
            assert [o["stockout_id"] for o in body["stockout_list"]] == [order["stockout_id"]]
            assert body["stockout_list"][0] == strict_shape(order)
    merged = next(o for o in orders if "," in o["src_tids"])
    second_tid = merged["src_tids"].split(",")[1]
    body = call(url, {"src_tid": second_tid})
    assert [o["stockout_id"] for o in body["stockout_list"]] == [merged["stockout_id"]]
    cancelled = next(o for o in orders if o["status"] == 5)
    assert call(url, {"stockout_no": cancelled["stockout_no"]})["total_count"] == 1
    assert call(url, {"stockout_no": "CK1999010100001"})["total_count"] == 0


def test_shop_and_warehouse_filters(url: str, orders: list[dict[str, Any]]) -> None:
    w = window(0, 4)
    rows, _ = fetch_all(url, {**w, "shop_no": "JD002", "warehouse_no": "WH001"}, page_size=100)
    expected = [
        i
        for i in expected_ids(orders, w["start_time"], w["end_time"], "consign_time", {95, 110})
        if next(o for o in orders if o["stockout_id"] == i)["shop_no"] == "JD002"
        and next(o for o in orders if o["stockout_id"] == i)["warehouse_no"] == "WH001"
    ]
    assert [o["stockout_id"] for o in rows] == expected and expected


def test_throttle_when_enabled() -> None:
    with _serve(throttle_per_minute=2) as srv:
        assert call(srv.url, window(0, 0))["flag"] == "success"
        assert call(srv.url, window(0, 0))["flag"] == "success"
        body = call(srv.url, window(0, 0))
        assert body["flag"] == "failure" and body["errorcode"] == 1012


# -- data set ------------------------------------------------------------------------------------------
def test_dataset_is_deterministic() -> None:
    a = build_dataset(3, 80, START, 4)
    b = build_dataset(3, 80, START, 4)
    assert json.dumps(a.orders, ensure_ascii=False) == json.dumps(b.orders, ensure_ascii=False)
    assert a.defects == b.defects
    assert json.dumps(build_dataset(4, 80, START, 4).orders) != json.dumps(a.orders)


@pytest.mark.parametrize(("n", "days"), [(10, 30), (40, 1), (120, 5), (400, 10)])
def test_defects(n: int, days: int) -> None:
    data = build_dataset(5, n, START, days)
    by_no = {o["order_no"]: o for o in data.orders}
    kinds = list(data.defects.values())
    per_kind = max(1, round(n / 40))
    assert kinds.count("zero_quantity") == kinds.count("unknown_sku") == per_kind
    first_day = {data.defects[no] for no in data.defects if by_no[no]["consign_time"].startswith(str(START))}
    assert first_day == {"zero_quantity", "unknown_sku"}
    for no, order in by_no.items():
        zero = any(line["goods_count"] == "0.0000" for line in order["details_list"])
        unknown = any(line["spec_no"] == UNKNOWN_SKU.spec_no for line in order["details_list"])
        kind = data.defects.get(no)
        assert (zero, unknown) == (kind == "zero_quantity", kind == "unknown_sku")
        if no in data.defects:
            assert order["status"] == 110
    assert build_dataset(5, 9, START, 3).defects == {}


def test_money_is_consistent_to_the_cent(orders: list[dict[str, Any]]) -> None:
    d = Decimal
    for o in orders:
        lines = o["details_list"]
        for line in lines:
            assert d(line["total_amount"]) == d(line["goods_count"]) * d(line["sell_price"])
            assert d(line["share_amount"]) == d(line["total_amount"]) - d(line["discount"])
            assert d(line["paid"]) == d(line["share_amount"]) + d(line["share_post"])
            assert line["stockout_id"] == o["stockout_id"]
        assert d(o["goods_count"]) == sum(d(x["goods_count"]) for x in lines)
        assert d(o["goods_total_amount"]) == sum(d(x["total_amount"]) for x in lines)
        assert d(o["discount"]) == sum(d(x["discount"]) for x in lines)
        assert d(o["post_amount"]) == sum(d(x["share_post"]) for x in lines)
        assert d(o["paid"]) == sum(d(x["paid"]) for x in lines)
        assert d(o["receivable"]) == d(o["goods_total_amount"]) - d(o["discount"]) + d(o["post_amount"])
        assert o["goods_type_count"] == len({x["spec_no"] for x in lines})
        for value in (o["goods_total_amount"], o["paid"], *(x["sell_price"] for x in lines)):
            assert len(value.split(".")[1]) == 4


def test_orders_are_realistic_and_complete(orders: list[dict[str, Any]]) -> None:
    statuses = [o["status"] for o in orders]
    assert statuses.count(110) > len(orders) / 2 and {95, 113, 5} <= set(statuses)
    assert len({o["shop_no"] for o in orders}) >= 3 and len({o["warehouse_no"] for o in orders}) >= 2
    assert {len(o["details_list"]) for o in orders} <= {1, 2, 3, 4}
    lines = [line for o in orders for line in o["details_list"]]
    assert any(line["gift_type"] == 1 and line["sell_price"] == "0.0000" for line in lines)
    assert len({o["stockout_id"] for o in orders}) == len({o["order_no"] for o in orders}) == len(orders)
    for o in orders:
        assert set(SEED_RESPONSE_FIELDS + SPEC_ORDER_FIELDS) <= set(o)
        assert o["order_no"] == o["stockout_no"]
        assert o["order_no"].startswith("CK") and len(o["order_no"]) == 15
        assert o["src_order_no"].startswith("JY")
        assert isinstance(o["stockout_id"], int) and isinstance(o["status"], int)
        if o["status"] == 5:
            assert o["consign_time"] == "0000-00-00 00:00:00"
        else:
            assert "09:00:00" <= o["consign_time"][11:] <= "21:59:59"
            assert START <= dt.date.fromisoformat(o["consign_time"][:10]) < START + dt.timedelta(days=DAYS)
        tids = {line["src_tid"] for line in o["details_list"]}
        assert tids == set(o["src_tids"].split(","))
        for line in o["details_list"]:
            assert set(SPEC_LINE_FIELDS) <= set(line) and "num" not in line
            sku_batch = line["batch_no"] != ""
            assert sku_batch == (line["product_date"] != "0000-00-00 00:00:00")
            if sku_batch:
                assert line["product_date"] < line["expire_date"]
    assert any("," in o["src_tids"] for o in orders)


# -- command line ----------------------------------------------------------------------------------------
def test_cli_prints_url_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.wdt",
            "--host",
            "127.0.0.1",
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
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        cli_url = proc.stdout.readline().strip()
        assert cli_url.startswith("http://127.0.0.1:") and cli_url.endswith("/router/qm")
        body = call(cli_url, window(0, 1))
        assert body["flag"] == "success" and body["total_count"] > 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
