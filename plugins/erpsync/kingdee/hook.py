"""Airflow hook for Kingdee K/3 Cloud WebAPI: builds a ``K3CloudClient`` from a connection.

Connection ``kingdee_default``:

* host = the server URL ending ``/k3cloud/``; login = the integration user name;
* extra.auth = ``signature`` (default: SDK 8.x signature headers, "第三方系统登录授权"), ``password``
  (AuthService.ValidateUser) or ``app_secret`` (AuthService.LoginByAppSecret);
* password = the app secret (``signature``, ``app_secret``) or the user's password (``password``);
* extra.acct_id = the data centre id; extra.app_id = ``<clientId>_<32 base64 chars>`` (not needed
  for ``password``); extra.lcid (2052); optional extra.timeout_seconds (120), extra.attempts (5),
  extra.backoff_seconds (1), extra.poll_seconds (1, BatchSaveQuery).

Every configuration fault raises :class:`~erpsync.kingdee.client.KingdeeConfigError` (or, for a
numeric extra that is not a number, :class:`~erpsync.connections.ConnectionConfigError`) naming the
connection and the field, never a secret.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from erpsync.connections import number
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeConfigError


class KingdeeHook(BaseHook):
    conn_name_attr = "kingdee_conn_id"
    default_conn_name = "kingdee_default"
    conn_type = "generic"
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
        config = K3CloudConfig(
            server_url=conn.host or "",
            acct_id=str(extra.get("acct_id") or ""),
            username=conn.login or "",
            app_id=str(extra.get("app_id") or ""),
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
