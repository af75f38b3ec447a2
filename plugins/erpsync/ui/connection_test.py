"""Airflow 3.3.2's "Test connection" button on a connection without a port: a backport of the fix.

The connections list sends ``port: Number(connection.port)``, which is ``0`` for a connection with no
port, and the api-server's ``POST /api/v2/connections/test`` then sees a port "different from the
stored connection" and answers 400 (apache/airflow#73298, merged after 3.3.2). The WDT and Kingdee
forms hide the port (the URL carries it), so every connection made in the form hit this.

The fix upstream treats port 0 as "no port" when comparing the test's destination with the stored
one. This root middleware does the same one step earlier: it drops ``"port": 0`` from that request's
body, so the test runs against the stored connection's own destination, with its stored secret. No
other request is touched. ``plugins/erpsync_ui.py`` installs it only on Airflow versions without
the fix.
"""

from __future__ import annotations

import json
from typing import Any

from packaging.version import Version

FIXED_IN = Version("3.3.3")
_PATH = "/api/v2/connections/test"


def needed(airflow_version: str) -> bool:
    return Version(airflow_version) < FIXED_IN


def without_zero_port(body: bytes) -> bytes:
    """The request body with a port of 0 removed; any other body unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body  # the api-server answers 422 itself
    if not isinstance(data, dict) or data.get("port") != 0 or isinstance(data.get("port"), bool):
        return body
    del data["port"]
    return json.dumps(data).encode()


class PortlessConnectionTest:
    """Pure ASGI middleware (a ``BaseHTTPMiddleware`` would buffer every response of the api-server)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(_PATH):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = without_zero_port(b"".join(chunks))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)
