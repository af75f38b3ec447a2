"""A Qimen gateway client for WDT 企业版: one place for signing, throttling, retries and envelopes.

Request layout follows the official Qimen SDK: system parameters (method, app_key, target_app_key,
timestamp, format, v, sign_method, sign) in the URL query, business parameters (incl. sid) as a form
body. Responses are parsed with every number kept as its exact text, so money never passes through a
float.
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

from erpsync.wdt.signing import qimen_sign

log = logging.getLogger(__name__)

# Codes worth waiting for: WDT "system busy / too many calls" and TOP flow control (spec §6).
_RETRYABLE_CODES = frozenset({"1012", "7"})


class WdtApiError(RuntimeError):
    """The gateway or WDT answered with an error; carries the code and the request it answered."""

    def __init__(self, method: str, code: str, message: str, request: Mapping[str, str]) -> None:
        shown = " ".join(f"{k}={v}" for k, v in request.items())
        super().__init__(f"WDT {method} failed with code {code}: {message} (request: {shown})")
        self.code = code
        self.error_message = message


@dataclass(frozen=True)
class QimenConfig:
    gateway_url: str
    app_key: str
    app_secret: str
    target_app_key: str
    sid: str
    timeout_seconds: float = 60.0
    min_interval_seconds: float = 1.0  # WDT allows 60 calls a minute per app key (spec §6)
    max_attempts: int = 4
    backoff_seconds: float = 2.0


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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.session = session or requests.Session()
        self._clock, self._sleep = clock, sleep
        self._last_call: float | None = None
        self.calls = 0

    def close(self) -> None:
        self.session.close()

    def _throttle(self) -> None:
        if self._last_call is not None:
            wait = self.config.min_interval_seconds - (self._clock() - self._last_call)
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()

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
        """Call a method and return the ``response`` object; retries busy answers and network errors."""
        business = {"sid": self.config.sid, **{k: str(v) for k, v in params.items() if v not in (None, "")}}
        delay = self.config.backoff_seconds
        for attempt in range(1, self.config.max_attempts + 1):
            self._throttle()
            self.calls += 1
            try:
                reply = self.session.post(
                    self.config.gateway_url,
                    params=self._signed_query(method, business),
                    data=business,
                    timeout=self.config.timeout_seconds,
                )
                if reply.status_code >= 500:
                    raise requests.HTTPError(f"HTTP {reply.status_code} from the gateway", response=reply)
                if reply.status_code != 200:
                    raise WdtApiError(method, f"HTTP {reply.status_code}", reply.text[:200], params)
                body = _parse(reply.text)
            except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as exc:
                if attempt == self.config.max_attempts:
                    raise WdtApiError(method, "network", str(exc), params) from exc
                log.warning("WDT %s attempt %d failed (%s); retrying in %.0f s", method, attempt, exc, delay)
            except json.JSONDecodeError as exc:
                raise WdtApiError(method, "invalid-response", f"not JSON: {reply.text[:200]!r}", params) from exc
            else:
                error = _error_of(body)
                if error is None:
                    return body["response"]
                code, message = error
                if code not in _RETRYABLE_CODES or attempt == self.config.max_attempts:
                    raise WdtApiError(method, code, message, params)
                log.warning("WDT %s is busy (code %s: %s); retrying in %.0f s", method, code, message, delay)
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")
