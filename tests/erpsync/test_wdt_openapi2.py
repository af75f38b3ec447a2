"""The WDT client over the direct openapi2 transport, against the emulator's openapi2 endpoint over loopback.

The same scheme, paginator and extract step as over Qimen; only the connection's ``transport`` differs.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles, read_parquet
from erpsync.steps.extract import extract
from erpsync.wdt.client import WdtClient, WdtConfig, WdtConfigError, WdtTransientError, openapi2_endpoint
from erpsync.wdt.connector import WdtReader, request_params
from erpsync.windows import Window, parse_datetime
from tests.conftest import SEED, START, WDT, run_of, serving

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
METHOD = "wdt.stockout.order.query.trade"
# the emulator's openapi2 identity (its defaults: the spec's worked example), and the Qimen seller
OPENAPI2 = {"app_key": "test2-xx", "app_secret": "12345", "sid": WDT["sid"]}
RATE_FILE = str(Path(tempfile.mkdtemp(prefix="erpsync-rate-")) / "wdt.sqlite")
TAOBAO = 1


def _client(server, transport="openapi2", **overrides) -> WdtClient:
    identity = OPENAPI2 if transport == "openapi2" else WDT
    url = server.openapi2_url if transport == "openapi2" else server.url
    settings = {
        **identity,
        "url": url,
        "transport": transport,
        "min_interval_seconds": 0,
        "backoff_seconds": 0.01,
        "rate_limit_url": RATE_FILE,
        **overrides,
    }
    return WdtClient(WdtConfig(**settings))


def _window(start: str, end: str) -> Window:
    return Window.of(parse_datetime(start, "start"), parse_datetime(end, "end"))


def test_the_endpoint_is_derived_from_the_schemes_method():
    assert openapi2_endpoint(METHOD) == "stockout_order_query_trade.php"
    assert openapi2_endpoint("wdt.stockin.order.query.refund") == "stockin_order_query_refund.php"


def test_both_transports_extract_the_same_orders_but_openapi2_no_taobao_ones(wdt_emulator, dataset, tmp_path):
    window = _window("2026-11-01", "2026-11-06")
    staged = {}
    for transport in ("qimen", "openapi2"):
        files = RunFiles(ObjectStoragePath((tmp_path / transport).as_uri()), SCHEME.dag_id, window)
        client = _client(wdt_emulator, transport)
        summary = extract(run_of(SCHEME, files), WdtReader(client, SCHEME.source))
        client.close()
        staged[transport] = read_parquet(files.orders)
        assert summary.orders == len(staged[transport])
    qimen, direct = staged["qimen"], staged["openapi2"]
    taobao = {o["order_no"] for o in dataset.orders if o["platform_id"] == TAOBAO}
    assert taobao & set(qimen["order_no"])  # the window does hold 淘系 orders
    assert set(direct["order_no"]) == set(qimen["order_no"]) - taobao
    # every order the direct endpoint returns is staged exactly as through Qimen (money as exact text)
    columns = ["order_no", "stockout_id", "goods_total_amount", "goods_count", "consign_time", "modified"]
    same = (
        qimen[qimen["order_no"].isin(set(direct["order_no"]))][columns].sort_values("order_no").reset_index(drop=True)
    )
    assert same.equals(direct[columns].sort_values("order_no").reset_index(drop=True))


def test_a_wrong_secret_is_a_configuration_error_without_the_secret(wdt_emulator):
    client = _client(wdt_emulator, app_secret="not-the-secret")
    with pytest.raises(WdtConfigError, match="code 100") as caught:
        client.call(METHOD, request_params(SCHEME.source, _window("2026-11-01", "2026-11-02")))
    assert "not-the-secret" not in str(caught.value)
    assert client.calls == 1  # refused at once


def test_qimen_credentials_are_refused_by_the_direct_endpoint(wdt_emulator):
    client = WdtClient(
        WdtConfig(
            **WDT, url=wdt_emulator.openapi2_url, transport="openapi2", min_interval_seconds=0, rate_limit_url=RATE_FILE
        )
    )
    with pytest.raises(WdtConfigError, match="code 100: 无效appkey"):
        client.call(METHOD, {"stockout_no": "CK-NONE"})


def test_5xx_answers_are_retried_and_recorded_per_exchange():
    from emulators.wdt import make_server

    with serving(make_server(**WDT, seed=SEED, orders=20, start=START, days=2, error_rate=0.5)) as server:
        slept: list[float] = []
        client = _client(server, max_attempts=10)
        client._sleep = slept.append
        for _ in range(8):
            assert client.call(METHOD, {"stockout_no": "CK-NONE"})["total_count"] == "0"
        assert client.retries == len(slept) > 0
        rows = client.recorder.take()
        assert len(rows) == client.calls and {r["method"] for r in rows} == {METHOD}
        assert sum(r["outcome"] == "transient" for r in rows) == client.retries
        assert sum(r["outcome"] == "ok" for r in rows) == 8


def test_throttle_answers_hold_off_without_using_the_retry_budget(tmp_path):
    from emulators.wdt import make_server

    now = [time.time()]
    with serving(
        make_server(**WDT, seed=SEED, orders=20, start=START, days=2, throttle_per_minute=2, clock=lambda: now[0])
    ) as server:
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        config = WdtConfig(
            **OPENAPI2,
            url=server.openapi2_url,
            transport="openapi2",
            min_interval_seconds=0,
            max_attempts=1,
            throttle_pause_seconds=61,
            rate_limit_url=str(tmp_path / "rate.sqlite"),
        )
        client = WdtClient(config, clock=lambda: now[0], sleep=sleep)
        for _ in range(3):
            client.call(METHOD, {"stockout_no": "CK-NONE"})
        assert slept == [61] and client.calls == 4 and client.throttled_seconds == 61
        assert [r["outcome"] for r in client.recorder.take()] == ["ok", "ok", "throttled", "ok"]
        impatient = WdtClient(replace(config, max_throttle_seconds=0), clock=lambda: now[0], sleep=sleep)
        with pytest.raises(WdtTransientError, match="code 1012"):
            for _ in range(3):
                impatient.call(METHOD, {"stockout_no": "CK-NONE"})


def _conn(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_the_hook_and_test_connection_speak_openapi2(wdt_emulator, monkeypatch):
    from erpsync.wdt.hook import WdtHook

    _conn(
        monkeypatch,
        "wdt_direct",
        conn_type="wdt",
        host=wdt_emulator.openapi2_url,
        login=OPENAPI2["app_key"],
        password=OPENAPI2["app_secret"],
        extra={"transport": "openapi2", "sid": OPENAPI2["sid"]},
    )
    hook = WdtHook("wdt_direct")
    config = hook.config()
    assert (config.transport, config.target_app_key) == ("openapi2", "")
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(f"WDT (openapi2) accepted app key 'test2-xx' for seller {OPENAPI2['sid']!r}")

    _conn(
        monkeypatch,
        "wdt_wrong",
        conn_type="wdt",
        host=wdt_emulator.openapi2_url,
        login=OPENAPI2["app_key"],
        password="wrong-secret",
        extra={"transport": "openapi2", "sid": OPENAPI2["sid"]},
    )
    ok, message = WdtHook("wdt_wrong").test_connection()
    assert not ok and "code 100" in message and "wrong-secret" not in message


def test_an_unknown_transport_is_a_configuration_error_naming_the_field(monkeypatch):
    from erpsync.connections import ConnectionConfigError
    from erpsync.wdt.hook import WdtHook

    _conn(
        monkeypatch,
        "wdt_bad",
        conn_type="wdt",
        host="http://wdt.test/",
        login="k",
        password="s",
        extra={"transport": "direct", "sid": "shop"},
    )
    with pytest.raises(ConnectionConfigError, match=r"extra.transport is 'direct'; expected one of qimen, openapi2"):
        WdtHook("wdt_bad").config()


@pytest.mark.parametrize("scheme_file", ["sales_return.yaml", "purchase_instock.yaml"])
def test_the_stockin_schemes_read_the_same_stockins_over_openapi2_but_taobao_refunds(
    scheme_file, wdt_emulator, tmp_path
):
    """The flows beside the sales run unchanged on either transport: the same stock-ins, staged as the
    same text, except that the direct endpoint keeps 淘系 refunds to itself (spec stock-in §1)."""
    scheme = load_scheme(INCLUDE_DIR / "schemes" / scheme_file)
    window = _window("2026-11-01", "2026-11-15")
    staged = {}
    for transport in ("qimen", "openapi2"):
        files = RunFiles(ObjectStoragePath((tmp_path / transport).as_uri()), scheme.dag_id, window)
        client = _client(wdt_emulator, transport)
        extract(run_of(scheme, files), WdtReader(client, scheme.source))
        client.close()
        staged[transport] = read_parquet(files.orders).set_index("order_no")
    qimen, direct = staged["qimen"], staged["openapi2"]
    assert len(qimen)
    expected = qimen[qimen["platform_id"] != str(TAOBAO)] if "platform_id" in qimen else qimen
    assert set(direct.index) == set(expected.index)
    columns = ["stockin_id", "goods_count", "modified", "status"]
    assert direct.loc[sorted(direct.index), columns].equals(qimen.loc[sorted(direct.index), columns])
    if scheme_file == "sales_return.yaml":
        assert len(expected) < len(qimen)  # the window does hold 淘系 refunds
