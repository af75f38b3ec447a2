"""The Airflow hooks build working clients from connections, and say which field is missing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from erpsync.connections import ConnectionConfigError
from erpsync.kingdee.client import KingdeeConfigError
from erpsync.kingdee.hook import KingdeeHook
from erpsync.wdt.hook import WdtHook
from tests.conftest import KINGDEE, WDT


def _wdt_conn(server, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "generic",
            "host": server.url,
            "login": WDT["app_key"],
            "password": WDT["app_secret"],
            "extra": {"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0, **extra},
        }
    )


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
    with pytest.raises(
        ConnectionConfigError, match="connection 'wdt_slow': extra.min_interval_seconds must be a number, got 'fast'"
    ):
        WdtHook("wdt_slow").get_conn()


def test_kingdee_hook_talks_to_the_server(kingdee_emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KINGDEE_DEFAULT",
        json.dumps(
            {
                "conn_type": "generic",
                "host": kingdee_emulator.url,
                "login": KINGDEE["username"],
                "password": KINGDEE["app_secret"],
                "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "lcid": 2052},
            }
        ),
    )
    client = KingdeeHook().get_conn()
    assert client.find_bills("SAL_OUTSTOCK", "FBillNo", ["CK-NONE"]) == {}


def _kingdee_conn(monkeypatch, conn_id: str, **changes) -> None:
    conn: dict[str, Any] = {
        "conn_type": "generic",
        "host": "http://127.0.0.1:1/k3cloud/",
        "login": KINGDEE["username"],
        "password": KINGDEE["app_secret"],
        "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"]},
    }
    extra = changes.pop("extra", {})
    conn.update(changes)
    conn["extra"] = {k: v for k, v in {**conn["extra"], **extra}.items() if v is not None}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({k: v for k, v in conn.items() if v is not None}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": None}, r"password \(the app secret\) is empty"),
        ({"extra": {"auth": "password"}, "password": None}, r"password \(the user's password\) is empty"),
        (
            {"extra": {"app_id": "318275_7f-uRxDvTuD2wKjE7dyu2VxM6JVZ5tDN"}},
            r"extra.app_id is malformed: expected <clientId>_<32",
        ),
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
    with pytest.raises(
        (KingdeeConfigError, ConnectionConfigError), match=f"connection 'kingdee_bad': {message}"
    ) as caught:
        KingdeeHook("kingdee_bad").get_conn()
    assert KINGDEE["app_secret"] not in str(caught.value)


def test_kingdee_hook_password_mode_needs_no_app_id(kingdee_emulator, monkeypatch):
    _kingdee_conn(monkeypatch, "kingdee_login", host=kingdee_emulator.url, extra={"auth": "password", "app_id": None})
    client = KingdeeHook("kingdee_login").get_conn()
    assert client.config.auth == "password" and client.config.password == KINGDEE["app_secret"]
    assert client.find_bills("SAL_OUTSTOCK", "FBillNo", ["CK-NONE"]) == {}


# -- Airflow's "Test connection" -------------------------------------------------------------------


def _wdt_test(monkeypatch, conn_id: str, url: str, conn_type: str = "wdt", **changes) -> tuple[bool, str]:
    conn = {
        "conn_type": conn_type,
        "host": url,
        "login": WDT["app_key"],
        "password": WDT["app_secret"],
        "extra": {"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, **changes}))
    return WdtHook(conn_id).test_connection()


@pytest.mark.parametrize("conn_type", ["wdt", "generic"])
def test_wdt_test_connection_makes_a_signed_call(wdt_emulator, monkeypatch, conn_type):
    ok, message = _wdt_test(monkeypatch, "wdt_ok", wdt_emulator.url, conn_type)
    assert ok, message
    assert message.startswith(f"WDT (qimen) accepted app key {WDT['app_key']!r} for seller {WDT['sid']!r}")


def test_wdt_test_connection_reports_a_wrong_secret(wdt_emulator, monkeypatch):
    wrong = "wrong-secret-0000000000"
    ok, message = _wdt_test(monkeypatch, "wdt_wrong", wdt_emulator.url, password=wrong)
    assert not ok
    assert "failed with code 25: Invalid signature" in message
    assert wrong not in message and WDT["app_secret"] not in message


def test_wdt_test_connection_reports_an_unreachable_gateway_at_once(monkeypatch):
    began = time.monotonic()
    ok, message = _wdt_test(monkeypatch, "wdt_gone", "http://127.0.0.1:1/router/qm")
    assert not ok and time.monotonic() - began < 5  # one attempt: no back-off while someone waits
    assert "failed with code network" in message and WDT["app_secret"] not in message


def test_wdt_test_connection_names_a_missing_field_without_the_throwaway_id(wdt_emulator, monkeypatch):
    ok, message = _wdt_test(
        monkeypatch,
        "wdt_nosid",
        wdt_emulator.url,
        extra={"target_app_key": WDT["target_app_key"], "min_interval_seconds": 0},
    )
    assert (ok, message) == (False, "extra field 'sid' is missing")


def _kingdee_test(monkeypatch, conn_id: str, conn_type: str = "kingdee", **changes) -> tuple[bool, str]:
    _kingdee_conn(monkeypatch, conn_id, conn_type=conn_type, **changes)
    return KingdeeHook(conn_id).test_connection()


@pytest.mark.parametrize(
    ("conn_type", "auth"), [("kingdee", "signature"), ("generic", "signature"), ("kingdee", "password")]
)
def test_kingdee_test_connection_logs_in_and_queries(kingdee_emulator, monkeypatch, conn_type, auth):
    ok, message = _kingdee_test(monkeypatch, "kingdee_ok", conn_type, host=kingdee_emulator.url, extra={"auth": auth})
    assert ok, message
    assert message == (
        f"Kingdee accepted user 'erpsync' in data centre {KINGDEE['acct_id']!r} "
        f"({auth} authentication) and answered a query of SAL_OUTSTOCK"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"password": "0" * 32}, "Kingdee refused the credentials (login user name, password, extra.app_id"),
        ({"extra": {"app_id": "318275_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, "Kingdee refused the credentials"),
        ({"extra": {"auth": "password"}, "password": "0" * 32}, "Kingdee ValidateUser refused user 'erpsync'"),
        ({"extra": {"acct_id": "nosuchcentre"}}, "Kingdee does not know the data centre in extra.acct_id"),
        ({"extra": {"app_id": "318275-short"}}, "extra.app_id is malformed"),
    ],
)
def test_kingdee_test_connection_says_what_is_wrong_and_never_a_secret(
    kingdee_emulator, monkeypatch, changes, expected
):
    ok, message = _kingdee_test(monkeypatch, "kingdee_wrong", host=kingdee_emulator.url, **changes)
    assert not ok
    assert message.startswith(expected), message
    for secret in (KINGDEE["app_secret"], KINGDEE["app_id"], KINGDEE["app_id"].split("_")[1], "0" * 32):
        assert secret not in message


def test_kingdee_test_connection_reports_an_unreachable_server_at_once(monkeypatch):
    began = time.monotonic()
    ok, message = _kingdee_test(monkeypatch, "kingdee_gone", host="http://127.0.0.1:1/k3cloud/", extra={"attempts": 5})
    assert not ok and time.monotonic() - began < 5
    assert message.startswith("Kingdee ExecuteBillQuery: network error")
    assert KINGDEE["app_secret"] not in message and KINGDEE["app_id"] not in message


def test_numeric_extras_left_blank_in_the_form_take_their_defaults(monkeypatch):
    # the connection form writes null for a field left empty ("" from a typed-in extra)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KINGDEE_BLANK",
        json.dumps(
            {
                "conn_type": "kingdee",
                "host": "http://127.0.0.1:1/k3cloud/",
                "login": KINGDEE["username"],
                "password": KINGDEE["app_secret"],
                "extra": {
                    "acct_id": KINGDEE["acct_id"],
                    "app_id": KINGDEE["app_id"],
                    "timeout_seconds": "",
                    "lcid": None,
                    "attempts": None,
                },
            }
        ),
    )
    config = KingdeeHook("kingdee_blank").config()
    assert (config.timeout_seconds, config.lcid, config.attempts) == (120, 2052, 5)
