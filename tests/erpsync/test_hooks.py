"""The Airflow hooks build working clients from connections, and say which field is missing."""

from __future__ import annotations

import json

import pytest

from erpsync.connections import ConnectionConfigError
from erpsync.kingdee.client import KingdeeConfigError
from erpsync.kingdee.hook import KingdeeHook
from erpsync.wdt.hook import WdtHook
from tests.conftest import KINGDEE, WDT


def _wdt_conn(server, **extra) -> str:
    return json.dumps({
        "conn_type": "generic", "host": server.url, "login": WDT["app_key"], "password": WDT["app_secret"],
        "extra": {"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0, **extra},
    })


def test_wdt_hook_talks_to_the_gateway(wdt_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WDT_DEFAULT", _wdt_conn(wdt_emulator))
    client = WdtHook().get_conn()
    response = client.call("wdt.stockout.order.query.trade", {"stockout_no": "CK-NONE"})
    assert response["total_count"] == "0"
    assert client.config.min_interval_seconds == 0


def test_wdt_hook_names_a_missing_extra(wdt_emulator, monkeypatch):
    conn = json.loads(_wdt_conn(wdt_emulator))
    del conn["extra"]["sid"]
    monkeypatch.setenv("AIRFLOW_CONN_WDT_OTHER", json.dumps(conn))
    with pytest.raises(ConnectionConfigError, match="connection 'wdt_other': extra field 'sid' is missing"):
        WdtHook("wdt_other").get_conn()


def test_wdt_hook_names_an_extra_that_is_not_a_number(wdt_emulator, monkeypatch):
    conn = json.loads(_wdt_conn(wdt_emulator, min_interval_seconds="fast"))
    monkeypatch.setenv("AIRFLOW_CONN_WDT_SLOW", json.dumps(conn))
    with pytest.raises(ConnectionConfigError, match="connection 'wdt_slow': extra.min_interval_seconds must be a number, got 'fast'"):
        WdtHook("wdt_slow").get_conn()


def test_kingdee_hook_talks_to_the_server(kingdee_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KINGDEE_DEFAULT", json.dumps({
        "conn_type": "generic", "host": kingdee_emulator.url, "login": KINGDEE["username"], "password": KINGDEE["app_secret"],
        "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "lcid": 2052},
    }))
    client = KingdeeHook().get_conn()
    assert client.find_bills("SAL_OUTSTOCK", ["CK-NONE"]) == {}


def _kingdee_conn(monkeypatch, conn_id: str, **changes) -> None:
    conn = {"conn_type": "generic", "host": "http://127.0.0.1:1/k3cloud/", "login": KINGDEE["username"],
            "password": KINGDEE["app_secret"], "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"]}}
    extra = changes.pop("extra", {})
    conn.update(changes)
    conn["extra"] = {k: v for k, v in {**conn["extra"], **extra}.items() if v is not None}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({k: v for k, v in conn.items() if v is not None}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": None}, r"password \(the app secret\) is empty"),
        ({"extra": {"auth": "password"}, "password": None}, r"password \(the user's password\) is empty"),
        ({"extra": {"app_id": "318275_7f-uRxDvTuD2wKjE7dyu2VxM6JVZ5tDN"}}, r"extra.app_id is malformed: expected <clientId>_<32"),
        ({"extra": {"app_id": "318275-7f/uRxDvTuD2wKjE7dyu2VxM6JVZ5tDN"}}, "extra.app_id is malformed"),
        ({"extra": {"app_id": None}}, "extra.app_id is malformed"),
        ({"extra": {"acct_id": None}}, r"extra.acct_id \(data centre id\) is empty"),
        ({"extra": {"auth": "oauth"}}, "extra.auth is 'oauth'; expected one of signature, password, app_secret"),
        ({"extra": {"lcid": "zh"}}, "extra.lcid must be a number, got 'zh'"),
        ({"host": "erp.example.com"}, "host must be the server URL"),
    ],
)
def test_kingdee_hook_names_the_bad_field_and_never_the_secret(monkeypatch, changes, message):
    _kingdee_conn(monkeypatch, "kingdee_bad", **changes)
    with pytest.raises((KingdeeConfigError, ConnectionConfigError), match=f"connection 'kingdee_bad': {message}") as caught:
        KingdeeHook("kingdee_bad").get_conn()
    assert KINGDEE["app_secret"] not in str(caught.value)


def test_kingdee_hook_password_mode_needs_no_app_id(kingdee_emulator, monkeypatch):
    _kingdee_conn(monkeypatch, "kingdee_login", host=kingdee_emulator.url, extra={"auth": "password", "app_id": None})
    client = KingdeeHook("kingdee_login").get_conn()
    assert client.config.auth == "password" and client.config.password == KINGDEE["app_secret"]
    assert client.find_bills("SAL_OUTSTOCK", ["CK-NONE"]) == {}
