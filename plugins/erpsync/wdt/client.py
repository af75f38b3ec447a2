"""A WDT 企业版 client: one place for the call limit, throttling, retries and the two transports.

WDT 企业版 is reached two ways (spec §1); ``WdtConfig.transport`` picks one, and the schemes do not
change with it (they name the Qimen method; the direct endpoint is derived from it):

* ``qimen`` (default): the Qimen gateway (``…/router/qm``). System parameters (method, app_key,
  target_app_key, timestamp ``yyyy-MM-dd HH:mm:ss`` GMT+8, format, v, sign_method, sign) in the URL
  query, business parameters (incl. sid) as a form body, as the official Qimen SDK lays them out; the
  TOP md5 signature; the reply wrapped as ``{"response": {...}}``, gateway errors also as TOP's
  ``{"error_response": {...}}`` (§5.2).
* ``openapi2``: WDT's own endpoint, ``<base URL>/stockout_order_query_trade.php`` for
  ``wdt.stockout.order.query.trade`` (``wdt.`` dropped, dots to underscores). sid, appkey, timestamp
  (epoch seconds; the server allows 5 minutes of skew, §3.4) and the business parameters in one form
  body, with the length-prefixed md5 signature (§3.1); a flat reply ``{"code": 0, "message": "", ...}``
  (§5.1). It does not return 淘系 (Taobao/Tmall) orders [DOC]: shops on those platforms need Qimen.

Responses are parsed with every number kept as its exact text, so money never passes through a float.
Faults are sorted here:

* throttle answers (WDT 1012, TOP 7 "App Call Limited"): every caller on the app key holds off, then
  the call is made again; this does not use up the retry budget (bounded by ``max_throttle_seconds``);
* network errors, HTTP 5xx, TOP 10/15 (service unavailable, remote service error) and replies that
  are not JSON: retried with exponential back-off (:func:`erpsync.transport.retrying`),
  ``max_attempts`` in all, then :class:`WdtTransientError` (Airflow's retry takes over);
* everything else the gateway or WDT refuses (signature, app key, sid, permission, parameters,
  timestamp, span): :class:`WdtConfigError` at once, since resending the same request changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import pendulum
import requests
from requests.adapters import BaseAdapter

from erpsync.replies import brief
from erpsync.transport import CallRecorder, call_record, make_session, retrying
from erpsync.wdt.ratelimit import open_limiter
from erpsync.wdt.signing import openapi2_sign, qimen_sign

log = logging.getLogger(__name__)

TRANSPORTS = ("qimen", "openapi2")
WDT_ZONE = "Asia/Shanghai"  # the gateway's clock: Qimen timestamps are GMT+8 (spec §2.2)
# WDT "系统调用频繁" and TOP flow control (spec §6): wait, then call again.
_THROTTLE_CODES = frozenset({"1012", "7"})
# TOP "service currently unavailable" and "remote service error": may pass.
_TRANSIENT_CODES = frozenset({"10", "15", "invalid-response"})
_METHOD_PREFIX = "wdt."
_OPENAPI2_SUFFIX = ".php"


class WdtApiError(RuntimeError):
    """The gateway or WDT answered with an error; carries the code and the request it answered."""

    def __init__(self, method: str, code: str, message: str, request: Mapping[str, str]) -> None:
        shown = " ".join(f"{k}={v}" for k, v in request.items())
        super().__init__(f"WDT {method} failed with code {code}: {message} (request: {shown})")
        self.code = code
        self.error_message = message


class WdtConfigError(WdtApiError):
    """A refusal no retry can fix: signature, app key, sid, permission, parameters."""


class WdtTransientError(WdtApiError):
    """Network, 5xx or throttling that outlasted the retries: Airflow may retry the task."""


@dataclass(frozen=True)
class WdtConfig:
    url: str  # qimen: the gateway URL (…/router/qm); openapi2: the base URL (…/openapi2/)
    app_key: str  # qimen: your Qimen app_key; openapi2: WDT's appkey
    app_secret: str
    sid: str
    target_app_key: str = ""  # qimen only: WDT's app key on Qimen
    transport: str = "qimen"
    timeout_seconds: float = 60.0
    min_interval_seconds: float = 1.0  # WDT allows 60 calls a minute per app key (spec §6), shared by all
    max_attempts: int = 4  # per call, for network errors and 5xx
    backoff_seconds: float = 2.0
    throttle_pause_seconds: float = 30.0  # after a throttle answer (one integrator waits 31 s)
    max_throttle_seconds: float = 900.0  # per call: throttled longer than this is a failure
    # where call slots are reserved (erpsync.wdt.ratelimit): "" = a SQLite file in the temp folder, for
    # one machine; redis://… or postgresql://… for the workers of every host
    rate_limit_url: str = ""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")


def openapi2_endpoint(method: str) -> str:
    """``wdt.stockout.order.query.trade`` -> ``stockout_order_query_trade.php``."""
    return method.removeprefix(_METHOD_PREFIX).replace(".", "_") + _OPENAPI2_SUFFIX


def openapi2_method(endpoint: str) -> str:
    """The inverse of :func:`openapi2_endpoint`, for naming recorded calls as the schemes do."""
    return _METHOD_PREFIX + endpoint.removesuffix(_OPENAPI2_SUFFIX).replace("_", ".")


def _parse(text: str) -> Any:
    """JSON with numbers kept as their exact text."""
    return json.loads(text, parse_float=str, parse_int=str)


def _message(message: Any, sub_code: Any = None, sub_message: Any = None) -> str:
    """The gateway's message with its detail, e.g. "Invalid signature (isv.sign-error: 签名错误)"."""
    detail = ": ".join(str(p) for p in (sub_code, sub_message) if p)
    text = str(message or "")
    return f"{text} ({detail})" if detail and text else (text or detail or "no message")


class WdtTransport(Protocol):
    """How one of WDT's transports lays out a request and reads a reply."""

    def request(self, config: WdtConfig, method: str, business: Mapping[str, str]) -> dict[str, Any]:
        """Keywords of ``session.post`` for one signed call."""
        ...

    def payload(self, body: Any) -> dict[str, Any] | tuple[str, str]:
        """The reply's data, or ``(code, message)`` when it reports a failure."""
        ...

    def describe(self, request: requests.PreparedRequest) -> str:
        """The method a sent request calls, as the schemes name it."""
        ...


class Qimen:
    """The Qimen gateway (spec §2, §5.2)."""

    def request(self, config: WdtConfig, method: str, business: Mapping[str, str]) -> dict[str, Any]:
        system = {
            "method": method,
            "app_key": config.app_key,
            "target_app_key": config.target_app_key,
            "timestamp": pendulum.now(WDT_ZONE).format("YYYY-MM-DD HH:mm:ss"),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
        }
        system["sign"] = qimen_sign({**system, **business}, config.app_secret)
        return {"url": config.url, "params": system, "data": dict(business)}

    def payload(self, body: Any) -> dict[str, Any] | tuple[str, str]:
        if not isinstance(body, dict):
            return "invalid-response", f"expected a JSON object, got {type(body).__name__}"
        if "error_response" in body:
            err = body["error_response"] or {}
            return str(err.get("code") or "unknown"), _message(err.get("msg"), err.get("sub_code"), err.get("sub_msg"))
        response = body.get("response")
        if not isinstance(response, dict):
            return "invalid-response", "no 'response' object in the reply"
        code = response.get("errorcode", response.get("code", "0"))
        if response.get("flag") == "failure" or str(code) not in ("0", ""):
            return str(code), _message(response.get("message"), response.get("sub_code"), response.get("sub_message"))
        return response

    def describe(self, request: requests.PreparedRequest) -> str:
        return dict(parse_qsl(urlsplit(request.url or "").query)).get("method", "?")


class Openapi2:
    """WDT's direct openapi2 endpoint (spec §3, §5.1)."""

    def request(self, config: WdtConfig, method: str, business: Mapping[str, str]) -> dict[str, Any]:
        data = {**business, "appkey": config.app_key, "timestamp": str(int(time.time()))}
        data["sign"] = openapi2_sign(data, config.app_secret)
        return {"url": config.url.rstrip("/") + "/" + openapi2_endpoint(method), "data": data}

    def payload(self, body: Any) -> dict[str, Any] | tuple[str, str]:
        if not isinstance(body, dict) or "code" not in body:
            return "invalid-response", "no 'code' in the reply"
        if str(body["code"]) != "0":
            return str(body["code"]), _message(body.get("message"))
        return {k: v for k, v in body.items() if k not in ("code", "message")}

    def describe(self, request: requests.PreparedRequest) -> str:
        return openapi2_method(urlsplit(request.url or "").path.rsplit("/", 1)[-1])


_TRANSPORTS: dict[str, Callable[[], WdtTransport]] = {"qimen": Qimen, "openapi2": Openapi2}


def _retried(exc: BaseException) -> bool:
    """Transient faults are retried, but not a throttle that outlasted its budget: Airflow may, later."""
    return isinstance(exc, WdtTransientError) and exc.code not in _THROTTLE_CODES


class WdtClient:
    def __init__(
        self,
        config: WdtConfig,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        http_transport: BaseAdapter | None = None,
    ) -> None:
        self.config = config
        self.transport = _TRANSPORTS[config.transport]()
        self.recorder = CallRecorder("wdt")  # every exchange, for the API catalog
        self.session = make_session(
            timeout=config.timeout_seconds,
            describe=self.transport.describe,
            recorder=self.recorder,
            secrets=(config.app_secret,),
            transport=http_transport,
        )
        self._sleep = sleep
        self.limiter = open_limiter(config.rate_limit_url, config.app_key, config.min_interval_seconds, clock, sleep)
        self.calls = 0  # requests sent
        self.retries = 0  # after network errors and 5xx
        self.throttled_seconds = 0.0  # spent holding off after throttle answers

    def close(self) -> None:
        self.session.close()
        self.limiter.close()

    def call(self, method: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Call a method and return the reply's data; sorts faults as the module says."""
        business = {"sid": self.config.sid, **{k: str(v) for k, v in params.items() if v not in (None, "")}}

        def count_retry() -> None:
            self.retries += 1

        policy = retrying(
            _retried,
            attempts=self.config.max_attempts,
            backoff_seconds=self.config.backoff_seconds,
            max_backoff_seconds=max(self.config.backoff_seconds, 60.0),
            log=log,
            what=f"WDT {method}",
            sleep=self._sleep,
            on_retry=count_retry,
        )
        return policy(self._throttled_call, method, business, params)

    def _throttled_call(self, method: str, business: Mapping[str, str], params: Mapping[str, str]) -> dict[str, Any]:
        """One call, made again after throttle answers (which every caller on the app key waits out)."""
        throttled = 0.0
        while True:
            self.limiter.acquire()
            self.calls += 1
            result = self._send(method, business, params)
            if isinstance(result, dict):
                return result
            code, message = result
            if code in _THROTTLE_CODES:
                pause = self.config.throttle_pause_seconds
                if throttled + pause > self.config.max_throttle_seconds:
                    raise WdtTransientError(method, code, f"{message}; throttled for {throttled:.0f} s", params)
                log.warning(
                    "WDT %s throttled (code %s: %s); every caller on this app key waits %.0f s",
                    method,
                    code,
                    message,
                    pause,
                )
                self.limiter.hold_off(pause)
                throttled += pause
                self.throttled_seconds += pause
                continue
            if code in _TRANSIENT_CODES:
                raise WdtTransientError(method, code, message, params)
            raise WdtConfigError(method, code, message, params)

    def _send(
        self, method: str, business: Mapping[str, str], params: Mapping[str, str]
    ) -> dict[str, Any] | tuple[str, str]:
        """One request: the reply's data or its (code, message); network errors, 5xx and replies that
        are not JSON raise :class:`WdtTransientError`."""
        try:
            reply = self.session.post(**self.transport.request(self.config, method, business))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise WdtTransientError(method, "network", str(exc), params) from exc
        record = call_record(reply)
        if reply.status_code >= 500:
            raise WdtTransientError(method, f"HTTP {reply.status_code}", brief(reply.text), params)
        if reply.status_code != 200:
            raise WdtConfigError(method, f"HTTP {reply.status_code}", brief(reply.text), params)
        try:
            result = self.transport.payload(_parse(reply.text))
        except json.JSONDecodeError:
            record.update(outcome="transient", detail="invalid-response")
            raise WdtTransientError(method, "invalid-response", f"not JSON: {brief(reply.text)!r}", params) from None
        if isinstance(result, dict):
            record["rows"] = next((len(v) for v in result.values() if isinstance(v, list)), None)
        else:
            code = result[0]
            record.update(
                outcome="throttled"
                if code in _THROTTLE_CODES
                else "transient"
                if code in _TRANSIENT_CODES
                else "error",
                detail=code,
            )
        return result
