"""The WDT emulator's fault flags and fidelity switches, black-box over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import inspect
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests

from emulators.wdt import make_server
from emulators.wdt.__main__ import _parse_args, server_options
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

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PRIVATE = ("receiver_name", "receiver_address", "receiver_mobile", "receiver_telno", "nick_name", "customer_name")


def serve(**options: Any) -> Any:
    options = {"seed": SEED, "orders": ORDERS, "start": START, "days": DAYS, **options}
    return serving(
        make_server("127.0.0.1", 0, app_key=APP_KEY, app_secret=SECRET, target_app_key=TARGET, sid=SID, **options)
    )


def raw(url: str, business: dict[str, Any], **system: str | None) -> requests.Response:
    """A signed GET; a system parameter given as None is left out."""
    params = {k: v for k, v in {**system_params(), **system}.items() if v is not None}
    params.update({k: str(v) for k, v in business.items()})
    params["sign"] = md5_sign(params, SECRET)
    return requests.get(url, params=params, timeout=10)


# -- faults --------------------------------------------------------------------------------------------
def test_latency_delays_every_call() -> None:
    with serve(latency_ms=250) as srv:
        started = time.monotonic()
        assert call(srv.url, window(0, 0))["flag"] == "success"
        assert time.monotonic() - started >= 0.25


def test_error_rate_answers_5xx_pages_not_json() -> None:
    with serve(error_rate=1.0) as srv:
        answers = [raw(srv.url, window(0, 0)) for _ in range(12)]
    assert {r.status_code for r in answers} <= {500, 502, 503} and len({r.status_code for r in answers}) > 1
    for r in answers:
        assert not r.headers["Content-Type"].startswith("application/json")
        assert str(r.status_code) in r.text and "response" not in r.text


def _statuses(seed: int) -> list[int]:
    with serve(seed=seed, error_rate=0.4) as srv:
        return [raw(srv.url, window(0, 0)).status_code for _ in range(25)]


def test_the_same_seed_gives_the_same_fault_sequence() -> None:
    first = _statuses(SEED)
    assert first == _statuses(SEED)
    assert 200 in first and set(first) - {200}
    assert first != _statuses(SEED + 1)


def test_throttle_counts_calls_per_app_key_across_threads() -> None:
    with serve(throttle_per_minute=10) as srv:
        codes: list[int] = []
        lock = threading.Lock()

        def caller() -> None:
            for _ in range(4):
                body = call(srv.url, {"stockout_no": "CK-NONE"})
                with lock:
                    codes.append(body["code"])

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        seen = srv.gateway.throttle
    assert sorted(codes) == [0] * 10 + [1012] * 22
    # what the gateway saw, for tests of callers that must stay under the quota
    assert list(seen.peak.values()) == [10] and list(seen.refused.values()) == [22]


def test_max_span_minutes() -> None:
    with serve(max_span_minutes=60) as srv:
        ok = call(srv.url, {"start_time": f"{START} 10:00:00", "end_time": f"{START} 11:00:00"})
        assert ok["flag"] == "success"
        body = call(srv.url, {"start_time": f"{START} 10:00:00", "end_time": f"{START} 11:00:01"})
        assert body["code"] == 100 and body["sub_code"] == "isv.time-span-too-long" and "60分钟" in body["message"]


def test_timestamp_tolerance() -> None:
    def ago(seconds: int) -> str:
        return (dt.datetime.now(SHANGHAI) - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")

    with serve(timestamp_tolerance_s=30) as srv:
        assert call(srv.url, window(0, 0), timestamp=ago(5))["flag"] == "success"
        assert call(srv.url, window(0, 0), timestamp=ago(60))["code"] == 31


# -- gateway fidelity ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def url() -> Any:
    with serve() as srv:
        yield srv.url


@pytest.mark.parametrize(("v", "code"), [(None, 32), ("abc", 33), ("1.0", 34), ("2", 34)])
def test_only_version_2_0_is_served(url: str, v: str | None, code: int) -> None:
    body = raw(url, window(0, 0), v=v).json()["response"]
    assert body["flag"] == "failure" and body["code"] == code and "errorcode" not in body


def test_xml_is_the_default_format(url: str) -> None:
    reference = call(url, {**window(0, 0), "page_size": 3})
    for fmt in (None, "xml"):
        r = raw(url, {**window(0, 0), "page_size": 3}, format=fmt)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
        root = ET.fromstring(r.content)
        assert root.tag == "response" and root.findtext("flag") == "success"
        assert root.findtext("total_count") == str(reference["total_count"])
        stockouts = root.find("stockout_list")
        assert stockouts is not None and stockouts.get("list") == "true"
        ids = [s.findtext("stockout_id") for s in stockouts.findall("stockout")]
        assert ids == [str(o["stockout_id"]) for o in reference["stockout_list"]]
        assert stockouts.find("stockout/details_list/detail/spec_no") is not None
    bad = raw(url, window(0, 0), format="yaml")
    assert bad.headers["Content-Type"].startswith("text/xml")
    assert ET.fromstring(bad.content).findtext("code") == "23"


def test_top_error_shape() -> None:
    with serve(top_error_shape=True) as srv:
        r = raw(srv.url, window(0, 0), app_key="stranger")
        assert set(r.json()) == {"error_response"}
        error = r.json()["error_response"]
        assert error["code"] == 29 and error["msg"] == "Invalid App Key" and error["sub_code"] and error["request_id"]
        assert "sub_msg" in error
        business = call(srv.url, {**window(0, 0), "page_size": 0})  # WDT's own errors keep their shape
        assert business["flag"] == "failure" and business["errorcode"] == 100


@pytest.mark.parametrize(
    ("options", "present"), [({}, False), ({"batch_fields": False}, False), ({"batch_fields": True}, True)]
)
def test_line_batch_fields_absent_by_default_or_present(options: dict[str, Any], present: bool) -> None:
    with serve(**options) as srv:
        orders = call(srv.url, {**window(0, 1), "page_size": 100})["stockout_list"]
    lines = [line for o in orders for line in o["details_list"]]
    batch = {"batch_no", "product_date", "expire_date"}
    assert lines and all((batch <= set(line)) == present and (batch & set(line) != set()) == present for line in lines)
    assert all("batch_no" in o for o in orders)  # the order's print batch stays


@pytest.mark.parametrize(
    ("options", "privacy"), [({}, "absent"), ({"privacy": "absent"}, "absent"), ({"privacy": "masked"}, "masked")]
)
def test_privacy_fields_absent_by_default_or_masked(options: dict[str, Any], privacy: str) -> None:
    with serve(**options) as srv:
        orders = call(srv.url, {**window(0, 4), "page_size": 100})["stockout_list"]
    taobao = [o for o in orders if o["platform_id"] == 1]
    others = [o for o in orders if o["platform_id"] != 1]
    assert taobao and others
    assert all(set(PRIVATE) <= set(o) and "*" not in o["receiver_name"] for o in others)
    for o in taobao:
        if privacy == "masked":
            assert o["receiver_name"].endswith("**") and "****" in o["receiver_mobile"]
        else:
            assert not set(PRIVATE) & set(o) and o["receiver_province"]


# -- command line ----------------------------------------------------------------------------------------
def test_every_flag_reaches_make_server() -> None:
    args = _parse_args(
        [
            "--now",
            "2026-11-02 12:00:00",
            "--latency-ms",
            "5",
            "--error-rate",
            "0.1",
            "--throttle-per-minute",
            "7",
            "--max-span-minutes",
            "90",
            "--timestamp-tolerance-s",
            "30",
            "--churn-rate",
            "0.2",
            "--late-rate",
            "0.3",
            "--renumber-rate",
            "0.4",
            "--top-error-shape",
            "--batch-fields",
            "--privacy",
            "masked",
            "--openapi2-appkey",
            "direct-key",
            "--openapi2-appsecret",
            "direct-secret",
            "--openapi2-timestamp-tolerance-s",
            "45",
        ]
    )
    options = server_options(args)
    assert options["now"] == dt.datetime(2026, 11, 2, 12, tzinfo=SHANGHAI)
    assert (options["latency_ms"], options["error_rate"], options["throttle_per_minute"]) == (5, 0.1, 7)
    assert (options["max_span_minutes"], options["timestamp_tolerance_s"]) == (90, 30)
    assert (options["churn_rate"], options["late_rate"], options["renumber_rate"]) == (0.2, 0.3, 0.4)
    assert options["top_error_shape"] is True and options["batch_fields"] is True and options["privacy"] == "masked"
    assert (options["openapi2_appkey"], options["openapi2_appsecret"]) == ("direct-key", "direct-secret")
    assert options["openapi2_timestamp_tolerance_s"] == 45
    srv = make_server("127.0.0.1", 0, **{**options, "orders": 10, "days": 1})
    try:
        assert abs(srv.emulator.now() - options["now"]) < dt.timedelta(seconds=5)
    finally:
        srv.server_close()
    defaults = server_options(_parse_args([]))
    assert defaults["late_rate"] == 1.0 and defaults["now"] is None
    # the strict side of each shape switch; the observed Qimen error shape
    assert (
        defaults["batch_fields"] is False and defaults["privacy"] == "absent" and defaults["top_error_shape"] is False
    )
    assert defaults["max_span_minutes"] == 43200 and defaults["timestamp_tolerance_s"] == 600
    assert (defaults["openapi2_appkey"], defaults["openapi2_appsecret"], defaults["sid"]) == (
        "test2-xx",
        "12345",
        "test2",
    )
    assert defaults["openapi2_timestamp_tolerance_s"] == 300
    # the command line's defaults are make_server's
    keywords = inspect.signature(make_server).parameters
    assert {k: keywords[k].default for k in defaults} == defaults


def test_cli_now_shows_the_data_as_it_was() -> None:
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
            "--seed",
            str(SEED),
            "--orders",
            "30",
            "--start",
            str(START),
            "--days",
            "2",
            "--now",
            f"{START} 12:00:00",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        cli_url = proc.stdout.readline().strip()
        body = call(
            cli_url,
            {
                "start_time": f"{START} 00:00:00",
                "end_time": f"{START + dt.timedelta(days=3)} 00:00:00",
                "is_by_modified": 1,
                "page_size": 100,
            },
        )
        assert body["flag"] == "success" and body["stockout_list"]
        assert max(o["modified"] for o in body["stockout_list"]) < f"{START} 12:01:00"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
