"""The installed provider offers the wdt and kingdee connection types: forms, masking, Test connection.

Relies on `make install` (the editable install writes the ``apache_airflow_provider`` entry point).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from importlib.metadata import entry_points, version
from importlib.resources import files
from pathlib import Path

import pytest

from erpsync.kingdee.hook import KingdeeHook
from erpsync.provider import get_provider_info
from erpsync.wdt.hook import WdtHook
from tests.conftest import KINGDEE, REPO, WDT

TYPES = {"wdt": WdtHook, "kingdee": KingdeeHook}


def _schema(name: str) -> dict:
    path = files("airflow") / name
    if not path.is_file():
        pytest.skip(f"this Airflow ships no {name}")
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_entry_point_is_installed():
    (point,) = [p for p in entry_points(group="apache_airflow_provider") if p.dist.name == "erpsync"]
    assert point.value == "erpsync.provider:get_provider_info"


def test_provider_info_validates_against_airflows_schemas():
    import jsonschema

    info = get_provider_info()
    # what ProvidersManager checks at discovery, and the stricter provider.yaml rules for connection types
    jsonschema.validate(info, _schema("provider_info.schema.json"))
    strict = _schema("provider.yaml.schema.json")["properties"]["connection-types"]
    jsonschema.validate(info["connection-types"], strict)
    assert info["package-name"] == "erpsync" and info["versions"] == [version("erpsync")]


def test_providers_manager_discovers_both_types():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    pm = ProvidersManager()
    assert pm.providers["erpsync"].version == version("erpsync")
    metadata = {m.connection_type: m for m in pm.iter_connection_type_hook_ui_metadata()}
    hooks = ProvidersManagerTaskRuntime().hooks
    for conn_type, hook in TYPES.items():
        info = hooks[conn_type]
        assert info.hook_class_name == f"{hook.__module__}.{hook.__name__}"
        assert (info.connection_type, info.connection_id_attribute_name, info.hook_name) == (
            hook.conn_type,
            hook.conn_name_attr,
            hook.hook_name,
        )
        assert info.connection_testable
        # declared in the provider info: no deprecated form methods on the hooks
        assert not {"get_connection_form_widgets", "get_ui_field_behaviour"} & set(vars(hook))
        assert metadata[conn_type].field_behaviour["hidden_fields"] == ["schema", "port"]
    assert metadata["kingdee"].field_behaviour["relabeling"]["host"] == "Server URL"
    assert metadata["wdt"].field_behaviour["placeholders"]["host"] == (
        "Qimen: http://hu3cgwt0tc.api.taobao.com/router/qm; openapi2: http://api.wangdian.cn/openapi2/"
    )
    sensitive = {k for k, w in pm._connection_form_widgets_from_metadata.items() if w.is_sensitive}
    assert {"extra__kingdee__app_id"} <= sensitive and not {k for k in sensitive if "__wdt__" in k}


def test_the_chat_robots_are_connection_types_too():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from erpsync.alerts import FeishuRobotHook, LarkRobotHook, WeComRobotHook

    hooks = ProvidersManagerTaskRuntime().hooks
    for hook in (WeComRobotHook, FeishuRobotHook, LarkRobotHook):
        assert hooks[hook.conn_type].hook_class_name == f"{hook.__module__}.{hook.__name__}"
        assert hooks[hook.conn_type].hook_name == hook.hook_name


def test_every_extra_the_hooks_read_is_a_form_field():
    fields = {c["connection-type"]: set(c.get("conn-fields", {})) for c in get_provider_info()["connection-types"]}
    assert fields["wdt"] == {
        "transport",
        "target_app_key",
        "sid",
        "min_interval_seconds",
        "timeout_seconds",
        "max_attempts",
        "throttle_pause_seconds",
        "max_throttle_seconds",
    }
    assert fields["kingdee"] == {
        "acct_id",
        "app_id",
        "auth",
        "lcid",
        "timeout_seconds",
        "attempts",
        "backoff_seconds",
        "poll_seconds",
    }


def test_the_hook_masks_the_app_id_in_task_logs(monkeypatch):
    from airflow.sdk.log import mask_logs

    # a fresh app id: no earlier test has registered it with the process-wide masker
    app_id = f"{secrets.randbelow(10**6):06d}_{base64.b64encode(secrets.token_bytes(24)).decode('ascii')}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_KINGDEE_MASKED",
        json.dumps(
            {
                "conn_type": "kingdee",
                "host": "http://127.0.0.1:1/k3cloud/",
                "login": KINGDEE["username"],
                "password": KINGDEE["app_secret"],
                "extra": {"acct_id": KINGDEE["acct_id"], "app_id": app_id},
            }
        ),
    )
    line = {"event": f"signing with {app_id}"}
    assert mask_logs(None, "info", dict(line)) == line  # extra is masked by key name, and app_id is no such name
    KingdeeHook("kingdee_masked").config()
    assert mask_logs(None, "info", dict(line)) == {"event": "signing with ***"}


@pytest.mark.parametrize("setting", ["Enabled", None])
def test_airflow_cli_tests_a_connection_when_enabled(wdt_emulator, airflow_db, setting):
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__TEST_CONNECTION"}
    env["AIRFLOW_CONN_WDT_CLI"] = json.dumps(
        {
            "conn_type": "wdt",
            "host": wdt_emulator.url,
            "login": WDT["app_key"],
            "password": WDT["app_secret"],
            "extra": {"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0},
        }
    )
    if setting:
        env["AIRFLOW__CORE__TEST_CONNECTION"] = setting
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "connections", "test", "wdt_cli"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if setting:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Connection success!" in result.stdout
    else:
        assert result.returncode == 1
        assert "Testing connections is disabled" in result.stdout


# -- the REST API the React UI uses ----------------------------------------------------------------


@pytest.fixture(scope="module")
def api(airflow_db):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        mp.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))  # the generated one is short
        with TestClient(create_app(apps="core")) as client:
            yield client


def test_the_connection_form_metadata_lists_both_types(api):
    reply = api.get("/ui/connections/hook_meta")
    assert reply.status_code == 200
    meta = {m["connection_type"]: m for m in reply.json()}
    kingdee, wdt = meta["kingdee"], meta["wdt"]
    assert kingdee["hook_name"] == KingdeeHook.hook_name and wdt["hook_name"] == WdtHook.hook_name
    assert kingdee["standard_fields"]["host"] == {
        "hidden": False,
        "title": "Server URL",
        "placeholder": "https://erp.example.com/k3cloud/",
    }
    assert kingdee["standard_fields"]["port"]["hidden"] and kingdee["standard_fields"]["url_schema"]["hidden"]
    assert wdt["standard_fields"]["login"]["title"] == "App key (app_key / appkey)"
    assert wdt["extra_fields"]["transport"]["value"] == "qimen"
    assert wdt["extra_fields"]["transport"]["schema"]["enum"] == ["qimen", "openapi2"]
    app_id = kingdee["extra_fields"]["app_id"]
    assert app_id["schema"] == {"type": ["string", "null"], "format": "password", "title": "App id (app_id)"}
    assert kingdee["extra_fields"]["auth"]["value"] == "signature"
    assert wdt["extra_fields"]["target_app_key"]["value"] == "21363512"
    assert wdt["extra_fields"]["sid"]["schema"]["title"] == "Seller account (sid)"


@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")  # Airflow's own Connection.get_hook
def test_the_ui_test_button_reaches_kingdee_and_the_app_id_stays_hidden(api, kingdee_emulator, monkeypatch):
    from airflow import settings

    # what `AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES=app_id` does when Airflow starts
    monkeypatch.setenv("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", "app_id")
    settings._configure_secrets_masker()
    body = {
        "connection_id": "kingdee_api",
        "conn_type": "kingdee",
        "host": kingdee_emulator.url,
        "login": KINGDEE["username"],
        "password": KINGDEE["app_secret"],
        "extra": json.dumps({"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "auth": "signature"}),
    }
    try:
        assert api.post("/api/v2/connections", json=body).status_code == 201
        shown = api.get("/api/v2/connections/kingdee_api").json()
        assert shown["password"] == "***"
        assert json.loads(shown["extra"]) == {"acct_id": KINGDEE["acct_id"], "app_id": "***", "auth": "signature"}
        # the button sends the listed (masked) fields back; the API fills the stored secrets in
        listed = {
            k: shown[k] or ""
            for k in ("connection_id", "conn_type", "description", "host", "login", "password", "schema", "extra")
        }
        result = api.post("/api/v2/connections/test", json=listed).json()
        assert result["status"] is True, result
        wrong = api.post("/api/v2/connections/test", json={**body, "password": "0" * 32}).json()
        assert wrong["status"] is False
        assert wrong["message"].startswith("Kingdee refused the credentials")
    finally:
        api.delete("/api/v2/connections/kingdee_api")
        monkeypatch.delenv("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES")
        settings._configure_secrets_masker()
