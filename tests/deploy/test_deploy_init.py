"""scripts/deploy_init.py's settings, without running Airflow: connections from environment variables,
skipped when unset, refused when half set, and no secret in what it says."""

from __future__ import annotations

import json

import pytest

import deploy_init  # scripts/ is on the tests' path (pyproject.toml)
from tests.deploy.compose import airflow_environment


def test_connections_from_the_compose_init_environment() -> None:
    # the very variables docker-compose.yaml hands airflow-init, with .env.example's values
    env = airflow_environment(service="airflow-init")
    wdt = deploy_init.wdt_connection(env)
    kingdee = deploy_init.kingdee_connection(env)
    assert (wdt["conn_type"], wdt["host"], wdt["login"], wdt["password"]) == (
        "wdt",
        env["WDT_GATEWAY_URL"],
        env["WDT_APP_KEY"],
        env["WDT_APP_SECRET"],
    )
    assert json.loads(wdt["extra"]) == {
        "transport": "qimen",
        "target_app_key": "21363512",
        "sid": env["WDT_SID"],
        "min_interval_seconds": 1.0,
    }
    assert (kingdee["conn_type"], kingdee["host"], kingdee["login"], kingdee["password"]) == (
        "kingdee",
        env["KINGDEE_URL"],
        env["KINGDEE_USERNAME"],
        env["KINGDEE_APP_SECRET"],
    )
    assert json.loads(kingdee["extra"]) == {
        "acct_id": env["KINGDEE_ACCT_ID"],
        "auth": "signature",
        "lcid": 2052,
        "app_id": env["KINGDEE_APP_ID"],
    }
    assert deploy_init.ui_passwords(env) == dict([env["AIRFLOW_UI_PASSWORDS"].split(":", 1)])


def test_an_openapi2_connection_needs_no_target_app_key() -> None:
    env = {
        "WDT_TRANSPORT": "openapi2",
        "WDT_GATEWAY_URL": "http://api.wangdian.cn/openapi2/",
        "WDT_APP_KEY": "k",
        "WDT_APP_SECRET": "s",
        "WDT_SID": "shop",
        "WDT_TARGET_APP_KEY": "21363512",
    }
    assert json.loads(deploy_init.wdt_connection(env)["extra"]) == {"transport": "openapi2", "sid": "shop"}
    with pytest.raises(deploy_init.InitError, match="WDT_TRANSPORT: 'direct' is not one of qimen, openapi2"):
        deploy_init.wdt_connection({**env, "WDT_TRANSPORT": "direct"})


def test_unset_connections_are_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy_init.wdt_connection({"WDT_APP_KEY": ""}) is None
    assert deploy_init.kingdee_connection({}) is None
    out = capsys.readouterr().out
    assert "wdt_default: skipped" in out and "kingdee_default: skipped" in out


def test_half_set_connections_and_bad_values_are_refused() -> None:
    secret = "s3cr3t-value-0001"
    env = {"WDT_GATEWAY_URL": "http://gw/router/qm", "WDT_APP_KEY": "k", "WDT_APP_SECRET": secret}
    with pytest.raises(deploy_init.InitError, match="WDT_SID not set") as error:
        deploy_init.wdt_connection(env)
    assert secret not in str(error.value)
    with pytest.raises(deploy_init.InitError, match="KINGDEE_AUTH"):
        deploy_init.kingdee_connection({"KINGDEE_AUTH": "oauth"})
    with pytest.raises(deploy_init.InitError, match="KINGDEE_LCID"):
        deploy_init.kingdee_connection(
            {
                "KINGDEE_URL": "u",
                "KINGDEE_ACCT_ID": "a",
                "KINGDEE_USERNAME": "n",
                "KINGDEE_APP_SECRET": secret,
                "KINGDEE_AUTH": "password",
                "KINGDEE_LCID": "zh",
            }
        )
    with pytest.raises(deploy_init.InitError, match="item 1") as error:
        deploy_init.ui_passwords({"AIRFLOW_UI_PASSWORDS": secret})
    assert secret not in str(error.value)


def test_password_login_needs_no_app_id() -> None:
    conn = deploy_init.kingdee_connection(
        {
            "KINGDEE_URL": "http://k/k3cloud/",
            "KINGDEE_ACCT_ID": "a",
            "KINGDEE_USERNAME": "n",
            "KINGDEE_APP_SECRET": "p",
            "KINGDEE_AUTH": "password",
        }
    )
    assert json.loads(conn["extra"]) == {"acct_id": "a", "auth": "password", "lcid": 2052}


def test_every_secret_is_redacted() -> None:
    env = airflow_environment(service="airflow-init")
    secrets = deploy_init.secret_values(env)
    example = {
        k: v
        for k, v in env.items()
        if k
        in (
            "WDT_APP_SECRET",
            "KINGDEE_APP_SECRET",
            "KINGDEE_APP_ID",
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY",
        )
    }
    text = " ".join([*example.values(), env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env["AIRFLOW_UI_PASSWORDS"]])
    redacted = deploy_init.redact(text, secrets)
    for value in [*example.values(), *deploy_init.ui_passwords(env).values()]:
        assert value not in redacted
    assert "postgresql+psycopg2://airflow:***@postgres:5432/airflow" in redacted
