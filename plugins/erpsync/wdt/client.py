"""A Qimen gateway client for WDT 企业版: one place for signing, throttling, retries and envelopes.

Request layout follows the official Qimen SDK: system parameters (method, app_key, target_app_key,
timestamp, format, v, sign_method, sign) in the URL query, business parameters (incl. sid) as a form
body. Responses are parsed with every number kept as its exact text, so money never passes through a
float.

Faults are sorted here:

* throttle answers (WDT 1012, TOP 7 "App Call Limited"): every caller on the app key holds off, then
  the call is made again; this does not use up the retry budget (bounded by ``max_throttle_seconds``);
* network errors, HTTP 5xx, TOP 10/15 (service unavailable, remote service error) and replies that
  are not JSON: retried with exponential back-off, ``max_attempts`` in all, then
  :class:`WdtTransientError` (Airflow's retry takes over);
* everything else the gateway or WDT refuses (signature, app key, sid, permission, parameters,
  timestamp, span): :class:`WdtConfigError` at once, since resending the same request changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pendulum
import requests

from erpsync.calls import CallRecorder
from erpsync.replies import brief
from erpsync.wdt.ratelimit import open_limiter
from erpsync.wdt.signing import qimen_sign

log = logging.getLogger(__name__)

# WDT "系统调用频繁" and TOP flow control (spec §6): wait, then call again.
_THROTTLE_CODES = frozenset({"1012", "7"})
# TOP "service currently unavailable" and "remote service error": may pass.
_TRANSIENT_CODES = frozenset({"10", "15", "invalid-response"})


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
class QimenConfig:
    gateway_url: str
    app_key: str
    app_secret: str
    target_app_key: str
    sid: str
    timeout_seconds: float = 60.0
    min_interval_seconds: float = 1.0  # WDT allows 60 calls a minute per app key (spec §6), shared by all
    max_attempts: int = 4  # per call, for network errors and 5xx
    backoff_seconds: float = 2.0
    throttle_pause_seconds: float = 30.0  # after a throttle answer (one integrator waits 31 s)
    max_throttle_seconds: float = 900.0  # per call: throttled longer than this is a failure
    # where call slots are reserved (erpsync.wdt.ratelimit): "" = a SQLite file in the temp folder, for
    # one machine; redis://… or postgresql://… for the workers of every host
    rate_limit_url: str = ""


def _parse(text: str) -> Any:
    """JSON with numbers kept as their exact text."""
    return json.loads(text, parse_float=str, parse_int=str)


def _error_of(body: Any) -> tuple[str, str] | None:
    """(code, message) when the envelope reports a failure, in either of the gateway's shapes."""
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
    return None


def _message(message: Any, sub_code: Any, sub_message: Any) -> str:
    """The gateway's message with its detail, e.g. "Invalid signature (isv.sign-error: 签名错误)"."""
    detail = ": ".join(str(p) for p in (sub_code, sub_message) if p)
    text = str(message or "")
    return f"{text} ({detail})" if detail and text else (text or detail or "no message")


class QimenClient:
    def __init__(
        self,
        config: QimenConfig,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.session = session or requests.Session()
        self._sleep = sleep
        self.limiter = open_limiter(config.rate_limit_url, config.app_key, config.min_interval_seconds, clock, sleep)
        self.calls = 0  # requests sent
        self.retries = 0  # after network errors and 5xx
        self.throttled_seconds = 0.0  # spent holding off after throttle answers
        self.recorder = CallRecorder("wdt")  # every exchange, for the API catalog

    def close(self) -> None:
        self.session.close()
        self.limiter.close()

    def _signed_query(self, method: str, business: Mapping[str, str]) -> dict[str, str]:
        system = {
            "method": method,
            "app_key": self.config.app_key,
            "target_app_key": self.config.target_app_key,
            "timestamp": pendulum.now("Asia/Shanghai").format("YYYY-MM-DD HH:mm:ss"),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
        }
        system["sign"] = qimen_sign({**system, **business}, self.config.app_secret)
        return system

    def call(self, method: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Call a method and return the ``response`` object; sorts faults as the module says."""
        business = {"sid": self.config.sid, **{k: str(v) for k, v in params.items() if v not in (None, "")}}
        delay = self.config.backoff_seconds
        attempt = 0
        throttled = 0.0
        while True:
            self.limiter.acquire()
            self.calls += 1
            try:
                with self.recorder.exchange(method) as record:
                    try:
                        body = self._send(method, business, params)
                    except WdtTransientError as exc:
                        record.update(outcome="transient", detail=str(exc.code))
                        raise
                    error = _error_of(body)
                    if error is None:
                        response = body["response"]
                        record["rows"] = next((len(v) for v in response.values() if isinstance(v, list)), None)
                        return response
                    code, message = error
                    record.update(outcome="throttled" if code in _THROTTLE_CODES else
                                  "transient" if code in _TRANSIENT_CODES else "error", detail=str(code))
                if code in _THROTTLE_CODES:
                    pause = self.config.throttle_pause_seconds
                    if throttled + pause > self.config.max_throttle_seconds:
                        raise WdtTransientError(method, code, f"{message}; throttled for {throttled:.0f} s", params)
                    log.warning("WDT %s throttled (code %s: %s); every caller on this app key waits %.0f s",
                                method, code, message, pause)
                    self.limiter.hold_off(pause)
                    throttled += pause
                    self.throttled_seconds += pause
                    continue
                if code in _TRANSIENT_CODES:
                    raise WdtTransientError(method, code, message, params)
                raise WdtConfigError(method, code, message, params)
            except WdtTransientError as exc:
                attempt += 1
                if attempt >= self.config.max_attempts or exc.code in _THROTTLE_CODES:
                    raise
                log.warning("WDT %s attempt %d of %d failed (%s: %s); retrying in %.1f s",
                            method, attempt, self.config.max_attempts, exc.code, exc.error_message, delay)
                self.retries += 1
                self._sleep(delay)
                delay *= 2

    def _send(self, method: str, business: Mapping[str, str], params: Mapping[str, str]) -> Any:
        """One request; network errors, 5xx and non-JSON replies raise :class:`WdtTransientError`."""
        try:
            reply = self.session.post(
                self.config.gateway_url,
                params=self._signed_query(method, business),
                data=business,
                timeout=self.config.timeout_seconds,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise WdtTransientError(method, "network", str(exc), params) from exc
        if reply.status_code >= 500:
            raise WdtTransientError(method, f"HTTP {reply.status_code}", brief(reply.text), params)
        if reply.status_code != 200:
            raise WdtConfigError(method, f"HTTP {reply.status_code}", brief(reply.text), params)
        try:
            return _parse(reply.text)
        except json.JSONDecodeError:
            raise WdtTransientError(method, "invalid-response", f"not JSON: {brief(reply.text)!r}", params) from None

