"""Airflow hook for Kingdee K/3 Cloud WebAPI: builds a ``K3CloudClient`` from a connection.

Connection ``kingdee_default``, of type ``kingdee`` (the form erpsync/provider.py declares) or
``generic`` (the same fields, typed in):

* host = the server URL ending ``/k3cloud/``; login = the integration user name;
* extra.auth = ``signature`` (default: SDK 8.x signature headers, "第三方系统登录授权"), ``password``
  (AuthService.ValidateUser) or ``app_secret`` (AuthService.LoginByAppSecret);
* password = the app secret (``signature``, ``app_secret``) or the user's password (``password``);
* extra.acct_id = the data centre id; extra.app_id = ``<clientId>_<32 base64 chars>`` (not needed
  for ``password``); extra.lcid (2052); optional extra.timeout_seconds (120), extra.attempts (5),
  extra.backoff_seconds (1), extra.poll_seconds (1, BatchSaveQuery).

The app id carries the client secret (signing.client_secret decodes it), so it is masked in logs like
the password.

Every configuration fault raises :class:`~erpsync.kingdee.client.KingdeeConfigError` (or, for a
numeric extra that is not a number, :class:`~erpsync.connections.ConnectionConfigError`) naming the
connection and the field, never a secret.
"""

from __future__ import annotations

from dataclasses import replace

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from erpsync.connections import ConnectionConfigError, connection_test_failure, number
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeConfigError, KingdeeError

# "Test connection" asks for a bill no stock-out has: the pipeline's own form, so a missing permission shows.
TEST_FORM = "SAL_OUTSTOCK"
TEST_BILL_NO = "ERPSYNC-TEST-CONNECTION"


class KingdeeHook(BaseHook):
    conn_name_attr = "kingdee_conn_id"
    default_conn_name = "kingdee_default"
    conn_type = "kingdee"
    hook_name = "金蝶云星空 (Kingdee K/3 Cloud WebAPI)"

    def __init__(self, kingdee_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.kingdee_conn_id = kingdee_conn_id

    def config(self) -> K3CloudConfig:
        cid = self.kingdee_conn_id
        name = f"connection {cid!r}"
        conn = self.get_connection(self.kingdee_conn_id)
        if conn.password:
            mask_secret(conn.password)
        extra = conn.extra_dejson
        if not isinstance(extra, dict):
            raise KingdeeConfigError(f"{name}: extra must be a JSON object")
        auth = str(extra.get("auth") or "signature")
        secret = conn.password or ""
        app_id = str(extra.get("app_id") or "")
        if app_id:
            mask_secret(app_id)  # extra is masked by key name only, and "app_id" is not a sensitive name
        config = K3CloudConfig(
            server_url=conn.host or "",
            acct_id=str(extra.get("acct_id") or ""),
            username=conn.login or "",
            app_id=app_id,
            app_secret=secret if auth != "password" else "",
            password=secret if auth == "password" else "",
            auth=auth,
            lcid=number(cid, extra, "lcid", 2052, int),
            timeout_seconds=number(cid, extra, "timeout_seconds", 120),
            attempts=number(cid, extra, "attempts", 5, int),
            backoff_seconds=number(cid, extra, "backoff_seconds", 1),
            poll_seconds=number(cid, extra, "poll_seconds", 1),
            name=name,
        )
        config.check()
        return config

    def get_conn(self) -> K3CloudClient:
        return K3CloudClient(self.config())

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test connection": one authenticated bill query (a login first in the login modes).

        One attempt and at most 30 s, as someone waits on the answer.
        """
        try:
            config = self.config()
            config = replace(config, attempts=1, timeout_seconds=min(config.timeout_seconds, 30))
            client = K3CloudClient(config)
            try:
                client.query_in(TEST_FORM, "FBillNo", [TEST_BILL_NO], ["FID"])
            finally:
                client.close()
        except (KingdeeError, ConnectionConfigError) as exc:
            return connection_test_failure(self.kingdee_conn_id, exc)
        return True, (
            f"Kingdee accepted user {config.username!r} in data centre {config.acct_id!r} "
            f"({config.auth} authentication) and answered a query of {TEST_FORM}"
        )
