"""The backport of apache/airflow#73298: "Test connection" on a connection without a port."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from erpsync.ui.connection_test import PortlessConnectionTest, needed, without_zero_port


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"body": json.loads(await request.body()), "length": request.headers["content-length"]})


def _client() -> TestClient:
    app = Starlette(
        routes=[
            Route("/api/v2/connections/test", echo, methods=["POST"]),
            Route("/api/v2/connections", echo, methods=["POST"]),
        ]
    )
    app.add_middleware(PortlessConnectionTest)
    return TestClient(app)


def test_the_list_buttons_port_zero_is_dropped_from_a_test_request():
    sent = {
        "connection_id": "wdt_default",
        "conn_type": "wdt",
        "host": "http://gw/router/qm",
        "password": "***",
        "port": 0,
    }
    answer = _client().post("/api/v2/connections/test", json=sent).json()
    assert answer["body"] == {k: v for k, v in sent.items() if k != "port"}
    assert int(answer["length"]) == len(json.dumps(answer["body"]).encode())


def test_other_requests_and_real_ports_are_untouched():
    client = _client()
    assert client.post("/api/v2/connections", json={"port": 0}).json()["body"] == {"port": 0}
    assert client.post("/api/v2/connections/test", json={"port": 5432}).json()["body"] == {"port": 5432}
    assert without_zero_port(b"not json") == b"not json"
    assert without_zero_port(b'{"port": false}') == b'{"port": false}'


def test_installed_only_where_airflow_lacks_the_fix():
    assert needed("3.3.2") and needed("3.2.0")
    assert not needed("3.3.3") and not needed("3.4.0")
