"""A K/3 Cloud WebAPI client: authentication, transient-fault retries, bill queries and BatchSave.

Two ways to authenticate, as ``auth`` says (spec §2):

* ``signature`` — the SDK 8.x way: signature headers on every call; the session the server opens is
  kept through its ``kdservice-sessionid`` cookie, sent back as cookie and header like the SDK does.
* ``password`` (AuthService.ValidateUser) or ``app_secret`` (AuthService.LoginByAppSecret) — a login
  call first, as on-premise installations without "第三方系统登录授权" use; the session id it returns
  is sent as the ``kdservice-sessionid`` header.

A "session lost" answer (MsgCode 1) logs in (or signs) again once; a second one means the server
refuses the credentials, a configuration error.

Faults are sorted in one place, :meth:`K3CloudClient._call`:

* :class:`KingdeeConfigError` — nothing a retry can fix: an unknown data centre, refused credentials,
  no permission, an unknown form or service, a malformed app id. Raised at once.
* :class:`KingdeeTransientError` — the network, HTTP 5xx, a busy server, ``response_error:``,
  network-control conflict (MsgCode 13), call limit (MsgCode 14). Reads and logins are retried with
  exponential back-off. A write (BatchSave) is never resent here: its outcome may be unknown (the
  save may have been applied before the reply was lost), and the load step decides by looking the
  bills up.

One client may be shared by several threads: each thread has its own HTTP connection pool, and the
login session is shared.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from requests.adapters import BaseAdapter

from erpsync.kingdee.signing import APP_ID_SHAPE, client_secret, signature_headers
from erpsync.replies import brief
from erpsync.transport import CallRecorder, backoff_delay, call_record, make_session, redact_fields, retrying

log = logging.getLogger(__name__)

_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
_AUTH = "Kingdee.BOS.WebApi.ServicesStub.AuthService."
_SESSION_COOKIE = "kdservice-sessionid"
_QUERY_PAGE = 2000  # rows per ExecuteBillQuery call (the server caps Limit at 10000)
_LOOKUP_BATCH = 500  # values per "key in (...)" filter

AUTH_MODES = ("signature", "password", "app_secret")
# MsgCode (spec §4.2) of whole-call failures
SESSION_LOST = 1
_CONFIG_CODES = {
    2: "no permission (没有权限)",
    7: "licence error (许可错误)",
    15: "administrator login is forbidden (禁止管理员登录)",
}
_TRANSIENT_CODES = {13: "network-control conflict (网控冲突)", 14: "call limit (调用限制)"}
_UNKNOWN_ACCT = "Fail to verify thirty passport"
_LOGIN_OK = (1, -5)  # Success; DealWithForm, which the manual says an API login may also accept


class KingdeeError(RuntimeError):
    """Kingdee refused or failed a call as a whole."""

    def __init__(self, message: str, msg_code: int | None = None) -> None:
        super().__init__(message + (f" (MsgCode {msg_code})" if msg_code is not None else ""))
        self.msg_code = msg_code


class KingdeeConfigError(KingdeeError):
    """A fault no retry can fix: the connection or the scheme must be corrected."""


class KingdeeTransientError(KingdeeError):
    """A fault that may pass: network, 5xx, busy, MsgCode 13/14. After a write, the outcome is unknown."""


@dataclass(frozen=True)
class K3CloudConfig:
    server_url: str  # ends with /k3cloud/
    acct_id: str
    username: str
    app_id: str = ""  # signature and app_secret auth
    app_secret: str = ""  # signature and app_secret auth
    password: str = ""  # password auth (ValidateUser)
    auth: str = "signature"
    lcid: int = 2052
    timeout_seconds: float = 120.0
    attempts: int = 5  # per read or login, for transient faults
    backoff_seconds: float = 1.0  # first pause; doubles up to max_backoff_seconds, with jitter
    max_backoff_seconds: float = 30.0
    poll_seconds: float = 1.0  # BatchSaveQuery: pause between QueryAsyncResult polls
    name: str = "Kingdee"  # how errors name this configuration, e.g. "connection 'kingdee_default'"

    def check(self) -> None:
        """Raise :class:`KingdeeConfigError` naming the first field that cannot work (never its value if secret)."""
        if self.auth not in AUTH_MODES:
            raise KingdeeConfigError(
                f"{self.name}: extra.auth is {self.auth!r}; expected one of {', '.join(AUTH_MODES)}"
            )
        if not self.server_url.startswith(("http://", "https://")):
            raise KingdeeConfigError(f"{self.name}: host must be the server URL, e.g. https://erp.example.com/k3cloud/")
        for field, value in (("extra.acct_id (data centre id)", self.acct_id), ("login (user name)", self.username)):
            if not value:
                raise KingdeeConfigError(f"{self.name}: {field} is empty")
        if self.auth in ("signature", "app_secret"):
            try:
                client_secret(self.app_id)
            except ValueError:
                raise KingdeeConfigError(f"{self.name}: extra.app_id is malformed: expected {APP_ID_SHAPE}") from None
            if not self.app_secret:
                raise KingdeeConfigError(f"{self.name}: password (the app secret) is empty")
        elif not self.password:
            raise KingdeeConfigError(f"{self.name}: password (the user's password) is empty")

    def pause(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter."""
        return backoff_delay(attempt, self.backoff_seconds, self.max_backoff_seconds, jitter=True)


def _status(result: Any) -> dict[str, Any] | None:
    inner = result.get("Result") if isinstance(result, dict) else None
    status = inner.get("ResponseStatus") if isinstance(inner, dict) else None
    return status if isinstance(status, dict) else None


def _failure(result: Any) -> tuple[str, int | None] | None:
    """The message and MsgCode of a failure envelope, if ``result`` is one."""
    status = _status(result)
    if status is None or status.get("IsSuccess") in (True, "true", "True"):
        return None
    messages = "; ".join(str(e.get("Message")) for e in status.get("Errors") or []) or "no message"
    code = status.get("MsgCode")
    try:
        return messages, int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        return messages, None


def _unwrap_query_error(result: Any) -> Any:
    """ExecuteBillQuery wraps a failure envelope as ``[[{"Result": …}]]``."""
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], list) and len(result[0]) == 1:
        inner = result[0][0]
        if isinstance(inner, dict) and "Result" in inner:
            return inner
    return result


_SECRET_KEYS = ("password", "appSecret", "appSec")


def _for_log(body: Mapping[str, Any]) -> str:
    """A request body for the debug log, login secrets blanked (Airflow's masker is the second guard)."""
    return json.dumps(redact_fields(body, _SECRET_KEYS), ensure_ascii=False, default=str)[:2000]


def _describe(request: requests.PreparedRequest) -> str:
    """The service a request calls: ``…DynamicFormService.BatchSave.common.kdsvc`` -> ``BatchSave``."""
    return (request.path_url or "").split("?", 1)[0].removesuffix(".common.kdsvc").rsplit(".", 1)[-1]


def sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class K3CloudClient:
    def __init__(self, config: K3CloudConfig, http_transport: BaseAdapter | None = None) -> None:
        config.check()
        self.config = config
        self._http_transport = http_transport
        self.base = config.server_url if config.server_url.endswith("/") else config.server_url + "/"
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self.recorder = CallRecorder("kingdee")  # every exchange, for the API catalog
        self._lock = threading.Lock()  # guards the list of sessions
        self._login_lock = threading.Lock()  # one login at a time; the others wait for its session
        self._sid: str | None = None  # login modes: the session all threads share

    @property
    def session(self) -> requests.Session:
        """This thread's HTTP session (connection pool and cookie jar)."""
        session = getattr(self._local, "session", None)
        if session is None:
            c = self.config
            session = self._local.session = make_session(
                timeout=c.timeout_seconds,
                describe=_describe,
                recorder=self.recorder,
                secrets=(c.app_secret, c.password, c.app_id),
                transport=self._http_transport,
            )
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    # -- one HTTP exchange --------------------------------------------------------------------
    def _post(self, service: str, body: Mapping[str, Any], headers: dict[str, str]) -> Any:
        """One HTTP exchange; the session records it, and this refines the record once the reply is read."""
        name = service.rsplit(".", 1)[-1]
        url = f"{self.base}{service}.common.kdsvc"
        payload = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
        log.debug("Kingdee %s request: %s", name, _for_log(body))
        try:
            reply = self.session.post(url, data=payload, headers=headers)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise KingdeeTransientError(f"Kingdee {name}: network error: {exc}") from exc
        record = call_record(reply)
        data = body.get("data")
        if isinstance(data, Mapping) and isinstance(data.get("Model"), list):
            record["rows"] = len(data["Model"])  # bills in a BatchSave
        try:
            return self._read(reply, name, url)
        except KingdeeTransientError as exc:
            record.update(outcome="transient", detail=str(exc)[:120])
            raise
        except KingdeeConfigError as exc:
            record.update(outcome="error", detail=str(exc)[:120])
            raise

    def _read(self, reply: requests.Response, name: str, url: str) -> Any:
        """The reply's JSON, or the fault it reports at the HTTP level."""
        text = reply.text
        if reply.status_code not in (200, 206):
            if _UNKNOWN_ACCT in text:
                raise KingdeeConfigError(
                    f"{self.config.name}: Kingdee does not know the data centre in extra.acct_id "
                    f"({self.config.acct_id!r}): {brief(text)}"
                )
            if reply.status_code == 404:
                raise KingdeeConfigError(
                    f"{self.config.name}: {url} was not found (HTTP 404); host must be the server URL ending in /k3cloud/"
                )
            if reply.status_code >= 500 or reply.status_code == 429:
                raise KingdeeTransientError(f"Kingdee {name}: HTTP {reply.status_code}: {brief(text)}")
            raise KingdeeConfigError(
                f"{self.config.name}: Kingdee {name} answered HTTP {reply.status_code}: {brief(text)}"
            )
        if text.startswith("response_error:"):
            raise KingdeeTransientError(f"Kingdee {name}: response_error: {brief(text[len('response_error:') :])}")
        try:
            return json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise KingdeeTransientError(f"Kingdee {name}: the reply is not JSON: {brief(text)!r}") from None

    def _auth_headers(self, url: str) -> tuple[dict[str, str], str | None]:
        """Headers that authenticate one call, and the session id they carry."""
        if self.config.auth == "signature":
            c = self.config
            headers = signature_headers(
                url, acct_id=c.acct_id, username=c.username, app_id=c.app_id, app_secret=c.app_secret, lcid=c.lcid
            )
            sid = self.session.cookies.get(_SESSION_COOKIE)
        else:
            headers, sid = {}, self._sid or self._login(None)
        if sid:
            headers[_SESSION_COOKIE] = sid
        return headers, sid

    def _login(self, stale: str | None) -> str:
        """Log in (password or app secret) unless another thread already replaced the session ``stale``."""
        with self._login_lock:
            if self._sid is not None and self._sid != stale:
                return self._sid
            c = self.config
            if c.auth == "password":
                service, body = (
                    "ValidateUser",
                    {"acctID": c.acct_id, "username": c.username, "password": c.password, "lcid": c.lcid},
                )
            else:
                service = "LoginByAppSecret"
                body = {
                    "acctID": c.acct_id,
                    "username": c.username,
                    "appId": c.app_id,
                    "appSecret": c.app_secret,
                    "lcid": c.lcid,
                }
            log.info("Kingdee %s: logging in with %s", service, _for_log(body))
            result = self._retrying(service)(self._post, _AUTH + service, body, {})
            sid = result.get("KDSVCSessionId") if isinstance(result, dict) else None
            if not isinstance(result, dict) or result.get("LoginResultType") not in _LOGIN_OK or not sid:
                message = result.get("Message") if isinstance(result, dict) else str(result)[:200]
                raise KingdeeConfigError(
                    f"{self.config.name}: Kingdee {service} refused user {c.username!r} in data centre {c.acct_id!r} "
                    f"(check login, password, extra.acct_id{', extra.app_id' if c.auth == 'app_secret' else ''}): {message}"
                )
            self._sid = str(sid)
            return self._sid

    def _retrying(self, what: str) -> Any:
        """The retry policy of reads and logins: transient faults, ``attempts`` in all, backing off."""
        c = self.config
        return retrying(
            lambda exc: isinstance(exc, KingdeeTransientError),
            attempts=c.attempts,
            backoff_seconds=c.backoff_seconds,
            max_backoff_seconds=c.max_backoff_seconds,
            jitter=True,
            log=log,
            what=what,
        )

    def _call(self, service: str, body: Mapping[str, Any], *, write: bool = False) -> Any:
        """POST one service call: authenticate, re-login once on a lost session, sort the faults.

        Reads are retried on transient faults; a write raises them to the caller (its outcome may be
        unknown). A lost session is safe to resend either way: the server did nothing.
        """
        name = service.rsplit(".", 1)[-1]
        url = f"{self.base}{service}.common.kdsvc"

        def once() -> Any:
            for relogin in (False, True):
                headers, sid = self._auth_headers(url)
                result = self._post(service, body, headers)
                failure = _failure(_unwrap_query_error(result))
                if failure is None:
                    return result
                message, code = failure
                if code == SESSION_LOST and not relogin:
                    log.info(
                        "Kingdee %s: session lost; %s again",
                        name,
                        "signing" if self.config.auth == "signature" else "logging in",
                    )
                    self._drop_session(sid)
                    continue
                if code == SESSION_LOST:
                    raise KingdeeConfigError(
                        f"{self.config.name}: Kingdee refused the credentials (login user name, password, extra.app_id, "
                        f"extra.acct_id, extra.lcid): {message}",
                        code,
                    )
                if code in _CONFIG_CODES:
                    raise KingdeeConfigError(
                        f"{self.config.name}: Kingdee {name}: {_CONFIG_CODES[code]}: {message}", code
                    )
                if code in _TRANSIENT_CODES:
                    raise KingdeeTransientError(f"Kingdee {name}: {_TRANSIENT_CODES[code]}: {message}", code)
                return result
            raise AssertionError("unreachable")

        return once() if write else self._retrying(f"Kingdee {name}")(once)

    def _drop_session(self, sid: str | None) -> None:
        if self.config.auth == "signature":
            self.session.cookies.clear()
        else:
            self._login(sid)

    # -- services -----------------------------------------------------------------------------
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
            result = self._call(_SERVICE + "ExecuteBillQuery", {"data": data})
            failure = _failure(_unwrap_query_error(result))
            if failure:
                # our filters are built by code, so a refusal names a form or field this server lacks
                raise KingdeeConfigError(
                    f"{self.config.name}: Kingdee cannot query form {form_id!r}: {failure[0]}", failure[1]
                )
            if not isinstance(result, list):
                raise KingdeeTransientError(f"Kingdee ExecuteBillQuery: expected rows, got {str(result)[:200]}")
            rows.extend(result)
            if len(result) < _QUERY_PAGE:
                return rows

    def query_in(
        self, form_id: str, key: str, values: Iterable[str], field_keys: Sequence[str], also: str = ""
    ) -> list[list[Any]]:
        """Rows of ``form_id`` whose ``key`` is one of ``values`` (and that meet the filter ``also``, if
        given), asked in batches of ``key in (...)``."""
        distinct = list(dict.fromkeys(values))
        rows: list[list[Any]] = []
        for i in range(0, len(distinct), _LOOKUP_BATCH):
            where = f"{key} in ({','.join(sql_quote(v) for v in distinct[i : i + _LOOKUP_BATCH])})"
            rows.extend(self.execute_bill_query(form_id, field_keys, f"{where} AND ({also})" if also else where))
        return rows

    def existing_numbers(self, form_id: str, numbers: Iterable[str]) -> set[str]:
        """The ``numbers`` that name a usable record of ``form_id`` (base data: materials, customers, stocks…).

        A disabled record (FForbidStatus B) counts as missing: Kingdee refuses it on a bill ("禁用也是不存在")."""
        rows = self.query_in(form_id, "FNumber", sorted(set(numbers)), ["FNumber"], also="FForbidStatus = 'A'")
        return {str(row[0]) for row in rows}

    def find_bills(self, form_id: str, key: str, values: Iterable[str]) -> dict[str, tuple[int, str]]:
        """Bills of ``form_id`` whose header field ``key`` (FBillNo, or a field such as F_ora_Text_ckdh when
        Kingdee numbers the bills) holds one of ``values``: value -> (FID, FBillNo)."""
        by_number = key.lower() == "fbillno"
        found: dict[str, tuple[int, str]] = {}
        for row in self.query_in(form_id, key, values, [key, "FID"] if by_number else [key, "FID", "FBillNo"]):
            found.setdefault(str(row[0]), (int(row[1]), str(row[0] if by_number else row[2])))
        return found

    def batch_save(self, form_id: str, data: Mapping[str, Any], *, asynchronous: bool = False) -> dict[str, Any]:
        """One BatchSave (or BatchSaveQuery, polled) call; returns ``Result.ResponseStatus``.

        Raises :class:`KingdeeTransientError` when the outcome is unknown or nothing was done.
        """
        body: dict[str, Any] = {"formid": form_id, "data": data}
        if asynchronous:
            body.update(beginmethod="BeginQueryImpl", querymethod="QueryAsyncResult")
        result = self._call(_SERVICE + "BatchSave", body, write=True)
        if asynchronous:
            result = self._await_task(result)
        status = _status(result)
        if status is None:
            raise KingdeeTransientError(f"Kingdee BatchSave: no ResponseStatus in the reply: {str(result)[:300]}")
        return status

    def _await_task(self, reply: Any) -> Any:
        """Poll QueryAsyncResult until the BatchSaveQuery task is complete (Status 2), or time out."""
        deadline = time.monotonic() + self.config.timeout_seconds
        while True:
            if not isinstance(reply, dict) or "Status" not in reply:
                raise KingdeeTransientError(f"Kingdee BatchSaveQuery: unexpected reply {str(reply)[:300]}")
            if int(reply["Status"]) == 2:
                return reply.get("Result")
            if time.monotonic() > deadline:
                raise KingdeeTransientError(
                    f"Kingdee BatchSaveQuery: task {reply.get('TaskId')} not complete after {self.config.timeout_seconds:.0f} s"
                )
            time.sleep(self.config.poll_seconds)
            info = json.dumps({"TaskId": reply.get("TaskId"), "Cancelled": False})
            reply = self._call(_SERVICE + "QueryAsyncResult", {"queryInfo": info})
