"""Airflow hook for WDT 企业版: builds a ``WdtClient`` from a connection.

Connection ``wdt_default``, of type ``wdt`` (the form erpsync/provider.py declares) or ``generic``
(the same fields, typed in). ``extra.transport`` picks how WDT is reached:

* ``qimen`` (default): host = the Qimen gateway URL (``…/router/qm``), login = your Qimen app_key,
  password = its app_secret, extra ``target_app_key`` (WDT's app key on Qimen) and ``sid``;
* ``openapi2``: host = WDT's openapi2 base URL (``http://api.wangdian.cn/openapi2/``), login = the
  WDT appkey, password = its appsecret, extra ``sid``.

Optional extras for both: ``min_interval_seconds`` (1: 60 calls a minute per app key, shared by every
process on the machine), ``timeout_seconds``, ``max_attempts``, ``throttle_pause_seconds``,
``max_throttle_seconds``.

The call limiter is ``[erpsync] wdt_rate_limit_url``: empty for a SQLite file shared by the processes
of one machine (the default), ``redis://…`` or ``postgresql://…`` for the workers of every host.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pendulum
from airflow.sdk import BaseHook, conf
from airflow.sdk.log import mask_secret

from erpsync.connections import ConnectionConfigError, connection_test_failure, extra_value, number, required
from erpsync.wdt.client import TRANSPORTS, WDT_ZONE, WdtApiError, WdtClient, WdtConfig

TEST_METHOD = "wdt.stockout.order.query.trade"


class WdtHook(BaseHook):
    conn_name_attr = "wdt_conn_id"
    default_conn_name = "wdt_default"
    conn_type = "wdt"
    hook_name = "旺店通·企业版 (WDT: Qimen or openapi2)"

    def __init__(self, wdt_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.wdt_conn_id = wdt_conn_id

    def get_conn(self) -> WdtClient:
        return WdtClient(self.config())

    def config(self) -> WdtConfig:
        conn = self.get_connection(self.wdt_conn_id)
        cid = self.wdt_conn_id
        secret = required(cid, "password (app_secret)", conn.password)
        mask_secret(secret)
        extra = conn.extra_dejson
        if not isinstance(extra, dict):
            raise ConnectionConfigError(f"connection {cid!r}: extra must be a JSON object")
        transport = str(extra_value(cid, extra, "transport", "qimen")).strip().lower()
        if transport not in TRANSPORTS:
            raise ConnectionConfigError(
                f"connection {cid!r}: extra.transport is {transport!r}; expected one of {', '.join(TRANSPORTS)}"
            )
        qimen = transport == "qimen"
        return WdtConfig(
            transport=transport,
            url=required(cid, "host (gateway URL)" if qimen else "host (openapi2 base URL)", conn.host),
            app_key=required(cid, "login (app_key)" if qimen else "login (appkey)", conn.login),
            app_secret=secret,
            target_app_key=str(extra_value(cid, extra, "target_app_key")) if qimen else "",
            sid=str(extra_value(cid, extra, "sid")),
            timeout_seconds=number(cid, extra, "timeout_seconds", 60),
            min_interval_seconds=number(cid, extra, "min_interval_seconds", 1.0),
            max_attempts=number(cid, extra, "max_attempts", 4, int),
            throttle_pause_seconds=number(cid, extra, "throttle_pause_seconds", 30),
            max_throttle_seconds=number(cid, extra, "max_throttle_seconds", 900),
            rate_limit_url=conf.get("erpsync", "wdt_rate_limit_url", fallback=""),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test connection": one signed query of the last minute's stock-outs, one per page,
        through the connection's transport.

        It goes through the shared rate limiter like every call; one attempt, at most 30 s, and a
        throttle answer fails at once instead of waiting, as someone waits on the answer.
        """
        try:
            config = self.config()
            timeout = min(config.timeout_seconds, 30)
            config = replace(config, max_attempts=1, max_throttle_seconds=0, timeout_seconds=timeout)
            end = pendulum.now(WDT_ZONE)
            client = WdtClient(config)
            try:
                response = client.call(
                    TEST_METHOD,
                    {
                        "start_time": (end - timedelta(minutes=1)).format("YYYY-MM-DD HH:mm:ss"),
                        "end_time": end.format("YYYY-MM-DD HH:mm:ss"),
                        "page_no": "0",
                        "page_size": "1",
                    },
                )
            finally:
                client.close()
        except (WdtApiError, ConnectionConfigError) as exc:
            return connection_test_failure(self.wdt_conn_id, exc)
        return True, (
            f"WDT ({config.transport}) accepted app key {config.app_key!r} for seller {config.sid!r}: {TEST_METHOD} found "
            f"{response.get('total_count', '?')} stock-outs in the last minute"
        )
