"""A K/3 Cloud WebAPI client: signed requests, the session cookie, bill queries and BatchSave.

Authentication is the SDK 8.x way (signature headers on every call); the session the server opens is
kept through its ``kdservice-sessionid`` cookie, sent back as cookie and header like the SDK does. A
"session lost" answer (MsgCode 1) drops the session and signs again, once.

Only reads are retried on network errors. A BatchSave is never resent by this client: a save that
timed out may have been applied, and the load step decides what to do by looking the bills up first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from erpsync.kingdee.signing import signature_headers

log = logging.getLogger(__name__)

_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
_SESSION_COOKIE = "kdservice-sessionid"
_SESSION_LOST = 1
_QUERY_PAGE = 2000  # rows per ExecuteBillQuery call (the server caps Limit at 10000)
_LOOKUP_BATCH = 200  # bill numbers per "FBillNo in (...)" filter


class KingdeeError(RuntimeError):
    """Kingdee refused a call as a whole (auth, bad request, server error)."""

    def __init__(self, service: str, message: str, msg_code: int | None = None) -> None:
        super().__init__(f"Kingdee {service} failed: {message}" + (f" (MsgCode {msg_code})" if msg_code is not None else ""))
        self.msg_code = msg_code


@dataclass(frozen=True)
class K3CloudConfig:
    server_url: str  # ends with /k3cloud/
    acct_id: str
    username: str
    app_id: str
    app_secret: str
    lcid: int = 2052
    timeout_seconds: float = 120.0
    max_read_attempts: int = 3
    backoff_seconds: float = 2.0


def _failure(result: Any) -> tuple[str, int | None] | None:
    """The message and MsgCode of a whole-call failure envelope, if ``result`` is one."""
    status = result.get("Result", {}).get("ResponseStatus") if isinstance(result, dict) else None
    if not isinstance(status, dict) or status.get("IsSuccess") in (True, "true", "True"):
        return None
    messages = "; ".join(str(e.get("Message")) for e in status.get("Errors") or []) or "no message"
    code = status.get("MsgCode")
    return messages, int(code) if code not in (None, "") else None


def sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class K3CloudClient:
    def __init__(self, config: K3CloudConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.base = config.server_url if config.server_url.endswith("/") else config.server_url + "/"

    def close(self) -> None:
        self.session.close()

    def _post(self, service: str, body: Mapping[str, Any]) -> Any:
        url = f"{self.base}{service}.common.kdsvc"
        headers = signature_headers(
            url,
            acct_id=self.config.acct_id,
            username=self.config.username,
            app_id=self.config.app_id,
            app_secret=self.config.app_secret,
            lcid=self.config.lcid,
        )
        sid = self.session.cookies.get(_SESSION_COOKIE)
        if sid:
            headers[_SESSION_COOKIE] = sid
        headers["Content-Type"] = "application/json; charset=utf-8"
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        reply = self.session.post(url, data=payload, headers=headers, timeout=self.config.timeout_seconds)
        name = service.rsplit(".", 1)[-1]
        if reply.status_code not in (200, 206):
            raise KingdeeError(name, f"HTTP {reply.status_code}: {reply.text[:300]}")
        if reply.text.startswith("response_error:"):
            raise KingdeeError(name, reply.text[len("response_error:") :].strip() or "empty error")
        try:
            return json.loads(reply.text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise KingdeeError(name, f"not JSON: {reply.text[:300]!r}") from None

    def _call(self, service: str, body: Mapping[str, Any], *, retry_network: bool) -> Any:
        """POST with one re-sign on a lost session, and network retries for reads."""
        name = service.rsplit(".", 1)[-1]
        attempts = self.config.max_read_attempts if retry_network else 1
        delay = self.config.backoff_seconds
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._post(service, body)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= attempts:
                    raise KingdeeError(name, f"network error: {exc}") from exc
                log.warning("Kingdee %s attempt %d failed (%s); retrying in %.0f s", name, attempt, exc, delay)
                time.sleep(delay)
                delay *= 2
                continue
            failure = _failure(_unwrap_query_error(result))
            if failure and failure[1] == _SESSION_LOST and not relogged:
                log.info("Kingdee session lost; signing in again")
                self.session.cookies.clear()
                relogged = True
                continue
            return result

    def execute_bill_query(
        self, form_id: str, field_keys: Sequence[str], filter_string: str = "", order_string: str = ""
    ) -> list[list[Any]]:
        """All rows of a bill query, read page by page."""
        rows: list[list[Any]] = []
        while True:
            data = {
                "FormId": form_id,
                "FieldKeys": ",".join(field_keys),
                "FilterString": filter_string,
                "OrderString": order_string,
                "TopRowCount": 0,
                "StartRow": len(rows),
                "Limit": _QUERY_PAGE,
                "SubSystemId": "",
            }
            result = self._call(_SERVICE + "ExecuteBillQuery", {"data": data}, retry_network=True)
            failure = _failure(_unwrap_query_error(result))
            if failure:
                raise KingdeeError("ExecuteBillQuery", failure[0], failure[1])
            if not isinstance(result, list):
                raise KingdeeError("ExecuteBillQuery", f"expected rows, got {str(result)[:200]}")
            rows.extend(result)
            if len(result) < _QUERY_PAGE:
                return rows

    def find_bills(self, form_id: str, bill_nos: Iterable[str]) -> dict[str, tuple[int, str]]:
        """Bills that already exist: bill number -> (FID, FBillNo)."""
        found: dict[str, tuple[int, str]] = {}
        numbers = list(dict.fromkeys(bill_nos))
        for i in range(0, len(numbers), _LOOKUP_BATCH):
            batch = numbers[i : i + _LOOKUP_BATCH]
            where = f"FBillNo in ({','.join(sql_quote(n) for n in batch)})"
            for fid, number in self.execute_bill_query(form_id, ["FID", "FBillNo"], where):
                found[str(number)] = (int(fid), str(number))
        return found

    def batch_save(self, form_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """One BatchSave call; returns ``Result.ResponseStatus`` with per-bill outcomes by DIndex."""
        result = self._call(_SERVICE + "BatchSave", {"formid": form_id, "data": data}, retry_network=False)
        status = result.get("Result", {}).get("ResponseStatus") if isinstance(result, dict) else None
        if not isinstance(status, dict):
            raise KingdeeError("BatchSave", f"no ResponseStatus in the reply: {str(result)[:300]}")
        if status.get("MsgCode") == _SESSION_LOST:
            raise KingdeeError("BatchSave", "; ".join(str(e.get("Message")) for e in status.get("Errors") or []), 1)
        return status


def _unwrap_query_error(result: Any) -> Any:
    """ExecuteBillQuery wraps a failure envelope as ``[[{"Result": …}]]``."""
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], list) and len(result[0]) == 1:
        inner = result[0][0]
        if isinstance(inner, dict) and "Result" in inner:
            return inner
    return result
