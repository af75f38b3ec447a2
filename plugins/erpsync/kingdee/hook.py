"""Airflow hook for Kingdee K/3 Cloud WebAPI: builds a ``K3CloudClient`` from a connection.

Connection ``kingdee_default``: host = the server URL ending ``/k3cloud/``, login = the integration
user name, password = the app secret, extra = ``{"acct_id": …, "app_id": …, "lcid": 2052}`` and
optionally ``timeout_seconds``.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from erpsync.connections import extra_value, required
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig


class KingdeeHook(BaseHook):
    conn_name_attr = "kingdee_conn_id"
    default_conn_name = "kingdee_default"
    conn_type = "generic"
    hook_name = "金蝶云星空 (Kingdee K/3 Cloud WebAPI)"

    def __init__(self, kingdee_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.kingdee_conn_id = kingdee_conn_id

    def get_conn(self) -> K3CloudClient:
        conn = self.get_connection(self.kingdee_conn_id)
        cid = self.kingdee_conn_id
        secret = required(cid, "password (app secret)", conn.password)
        mask_secret(secret)
        extra = conn.extra_dejson
        config = K3CloudConfig(
            server_url=required(cid, "host (server URL)", conn.host),
            acct_id=str(extra_value(cid, extra, "acct_id")),
            username=required(cid, "login (user name)", conn.login),
            app_id=str(extra_value(cid, extra, "app_id")),
            app_secret=secret,
            lcid=int(extra_value(cid, extra, "lcid", 2052)),
            timeout_seconds=float(extra_value(cid, extra, "timeout_seconds", 120)),
        )
        return K3CloudClient(config)
