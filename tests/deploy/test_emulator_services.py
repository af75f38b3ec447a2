"""The compose profile `emulators`: each emulator service's own command serves, and the connections
airflow-init writes from .env.example reach it (Airflow's "Test connection" of each hook)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import deploy_init
from demo import serving_command
from tests.conftest import free_port
from tests.deploy.compose import airflow_environment, service_command


@contextmanager
def _service(name: str, replace: dict[str, str], log: Path) -> Iterator[str]:
    """Run a compose service's command here, with ``replace`` applied to its arguments; yields its URL."""
    argv = [replace.get(part, part) for part in service_command(name)]
    assert argv[0] == "python"
    with serving_command([sys.executable, *argv[1:]], log) as url:
        yield url.replace("0.0.0.0", "127.0.0.1")


def test_each_emulator_service_answers_the_connection_init_writes(tmp_path, monkeypatch):
    env = airflow_environment(service="airflow-init")
    monkeypatch.setenv("AIRFLOW__ERPSYNC__WDT_RATE_LIMIT_URL", str(tmp_path / "rate.sqlite"))
    wdt_port, kingdee_port = str(free_port()), str(free_port())
    with (
        _service("wdt-emulator", {"8090": wdt_port}, tmp_path / "wdt.log") as wdt_url,
        _service(
            "kingdee-emulator",
            {"8091": kingdee_port, "/opt/airflow/emulator-data/kingdee": str(tmp_path / "kingdee")},
            tmp_path / "kingdee.log",
        ) as kingdee_url,
    ):
        # .env.example points the connections at the services' names; here they are on loopback
        local = {
            **env,
            "WDT_GATEWAY_URL": env["WDT_GATEWAY_URL"].replace("wdt-emulator:8090", f"127.0.0.1:{wdt_port}"),
            "KINGDEE_URL": env["KINGDEE_URL"].replace("kingdee-emulator:8091", f"127.0.0.1:{kingdee_port}"),
        }
        assert (local["WDT_GATEWAY_URL"], local["KINGDEE_URL"]) == (wdt_url, kingdee_url)
        for conn_id, connection in (
            ("wdt_default", deploy_init.wdt_connection(local)),
            ("kingdee_default", deploy_init.kingdee_connection(local)),
        ):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        from erpsync.kingdee.hook import KingdeeHook
        from erpsync.wdt.hook import WdtHook

        for hook in (WdtHook("wdt_default"), KingdeeHook("kingdee_default")):
            ok, message = hook.test_connection()
            assert ok, message
