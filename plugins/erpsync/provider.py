"""Airflow provider info: the ``wdt``, ``kingdee`` and chat-robot connection types and their forms.

Airflow finds it through the ``apache_airflow_provider`` entry point in pyproject.toml (a hook in the
plugins folder is never offered as a connection type). The forms are declared here, not with the hook
methods ``get_connection_form_widgets``/``get_ui_field_behaviour``, deprecated since Airflow 3.2.

Fields under ``conn-fields`` are stored in the connection's extra under their own names, the names the
hooks read whatever the connection type, so ``generic`` connections keep working. A field whose schema
has ``"format": "password"`` is a masked input. Airflow does not redact an extra key by its format but
by its name (``[core] sensitive_var_conn_names``), hence the README's setting for ``app_id``.

The shapes follow Airflow 3.3's ``provider_info.schema.json`` and the ``connection-types`` part of
``provider.yaml.schema.json``; tests/erpsync/test_connection_types.py validates against both.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any


def _text(label: str, description: str, **schema: Any) -> dict:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def _number(label: str, description: str, default: float, minimum: float, kind: str = "number") -> dict:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "default": default, "minimum": minimum},
    }


WDT_FORM: dict[str, Any] = {
    "hook-class-name": "erpsync.wdt.hook.WdtHook",
    "hook-name": "旺店通·企业版 (WDT: Qimen or openapi2)",
    "connection-type": "wdt",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Gateway or openapi2 URL",
            "login": "App key (app_key / appkey)",
            "password": "App secret (app_secret / appsecret)",
        },
        "placeholders": {
            "host": "Qimen: http://hu3cgwt0tc.api.taobao.com/router/qm; openapi2: http://api.wangdian.cn/openapi2/",
            "login": "Qimen: your Qimen app_key, e.g. 12345678; openapi2: WDT's appkey",
            "password": "the secret of that app key",
        },
    },
    "conn-fields": {
        "transport": _text(
            "Transport",
            "qimen: the 奇门 gateway (旺店通·企业奇门), which also returns 淘系 orders; openapi2: WDT's own "
            "endpoint (sid + appkey + appsecret), which does not return 淘系 (Taobao/Tmall) orders.",
            default="qimen",
            enum=["qimen", "openapi2"],
        ),
        "target_app_key": _text(
            "Target app key (target_app_key)",
            "Qimen only: WDT's app key on Qimen, which routes the call to WDT: 21363512 unless WDT says otherwise.",
            default="21363512",
        ),
        "sid": _text("Seller account (sid)", "The WDT 企业版 seller account (卖家账号), e.g. mycompany."),
        "min_interval_seconds": _number(
            "Seconds between calls",
            "WDT allows 60 calls a minute per app key; every process on this machine shares the pause.",
            1,
            0,
        ),
        "timeout_seconds": _number("Timeout (seconds)", "Per HTTP request.", 60, 1),
        "max_attempts": _number("Attempts", "Per call, on network errors and HTTP 5xx.", 4, 1, "integer"),
        "throttle_pause_seconds": _number(
            "Pause after throttling (seconds)", "After WDT answers 1012 (系统调用频繁) or Qimen code 7.", 30, 0
        ),
        "max_throttle_seconds": _number(
            "Longest throttling (seconds)",
            "A call throttled longer than this fails (Airflow may retry the task).",
            900,
            0,
        ),
    },
}

KINGDEE_FORM: dict[str, Any] = {
    "hook-class-name": "erpsync.kingdee.hook.KingdeeHook",
    "hook-name": "金蝶云星空 (Kingdee K/3 Cloud WebAPI)",
    "connection-type": "kingdee",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "Server URL", "login": "User name", "password": "App secret or password"},
        "placeholders": {
            "host": "https://erp.example.com/k3cloud/",
            "login": "the integration user, e.g. webapi",
            "password": "the app secret (第三方系统登录授权); the user's password when authentication is 'password'",
        },
    },
    "conn-fields": {
        "acct_id": _text("Data centre id (acct_id)", "The data centre's id (数据中心ID, 账套ID), e.g. 6502e1a3c5b1f0."),
        "app_id": _text(
            "App id (app_id)",
            "The app id of 第三方系统登录授权: <clientId>_<32 characters>. It carries the client secret, so it "
            "is masked. Not used when authentication is 'password'.",
            format="password",
        ),
        "auth": _text(
            "Authentication",
            "signature: SDK 8.x signed requests (第三方系统登录授权); password: AuthService.ValidateUser with "
            "the user's password; app_secret: AuthService.LoginByAppSecret.",
            default="signature",
            enum=["signature", "password", "app_secret"],
        ),
        "lcid": {
            "label": "Language (lcid)",
            "description": "2052 简体中文, 1033 English, 3076 繁體中文.",
            "schema": {"type": ["integer", "null"], "default": 2052, "enum": [2052, 1033, 3076]},
        },
        "timeout_seconds": _number(
            "Timeout (seconds)", "Per HTTP request; also the longest wait for a BatchSaveQuery.", 120, 1
        ),
        "attempts": _number(
            "Attempts", "Per read or login, on network errors, HTTP 5xx and busy answers.", 5, 1, "integer"
        ),
        "backoff_seconds": _number("First back-off (seconds)", "Doubles after each failed attempt, up to 30 s.", 1, 0),
        "poll_seconds": _number("Poll interval (seconds)", "Between QueryAsyncResult polls of a BatchSaveQuery.", 1, 0),
    },
}


def _robot(conn_type: str, hook: str, name: str, host: str, token: str, signing: str | None) -> dict[str, Any]:
    """A chat robot told of failed runs (erpsync.alerts): the token in the password, never the whole URL."""
    form: dict[str, Any] = {
        "hook-class-name": f"erpsync.alerts.{hook}",
        "hook-name": name,
        "connection-type": conn_type,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL (optional)", "password": token},
            "placeholders": {"host": host, "password": "only the token, not the whole webhook URL"},
        },
    }
    if signing:
        form["conn-fields"] = {"secret": _text("Signing secret", signing, format="password")}
    return form


ROBOT_FORMS = [
    _robot(
        "wecom",
        "WeComRobotHook",
        "企业微信群机器人 (WeCom group robot)",
        "https://qyapi.weixin.qq.com",
        "Webhook key (key=…)",
        None,
    ),
    _robot(
        "feishu",
        "FeishuRobotHook",
        "飞书自定义机器人 (Feishu custom bot)",
        "https://open.feishu.cn",
        "Hook token (the webhook's last part)",
        "Only if the bot has 签名校验 on.",
    ),
    _robot(
        "lark",
        "LarkRobotHook",
        "Lark custom bot",
        "https://open.larksuite.com",
        "Hook token (the webhook's last part)",
        "Only if the bot checks signatures.",
    ),
]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "erpsync",
        "name": "erpsync",
        "description": "旺店通 WDT (Qimen) and 金蝶云星空 Kingdee K/3 Cloud connections for the erpsync pipelines.",
        "versions": [version("erpsync")],
        "connection-types": [WDT_FORM, KINGDEE_FORM, *ROBOT_FORMS],
    }
