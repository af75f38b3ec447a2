"""The Airflow hooks build working clients from connections, and say which field is missing."""

from __future__ import annotations

import json

import pytest

from erpsync.connections import ConnectionConfigError
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


def test_kingdee_hook_talks_to_the_server(kingdee_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KINGDEE_DEFAULT", json.dumps({
        "conn_type": "generic", "host": kingdee_emulator.url, "login": KINGDEE["username"], "password": KINGDEE["app_secret"],
        "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "lcid": 2052},
    }))
    client = KingdeeHook().get_conn()
    assert client.find_bills("SAL_OUTSTOCK", ["CK-NONE"]) == {}


def test_kingdee_hook_names_a_missing_password(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KINGDEE_NOPASS", json.dumps({
        "conn_type": "generic", "host": "http://127.0.0.1:1/k3cloud/", "login": "u", "extra": {"acct_id": "a", "app_id": "b"},
    }))
    with pytest.raises(ConnectionConfigError, match="connection 'kingdee_nopass': password"):
        KingdeeHook("kingdee_nopass").get_conn()
