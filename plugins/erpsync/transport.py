"""The one HTTP layer of every outbound call (WDT, Kingdee, chat robots).

:func:`make_session` builds the ``requests.Session`` each client sends through:

* a default **timeout** on every request;
* **call recording** as a response hook: one row per HTTP exchange (a retry is a row of its own) in
  the client's :class:`CallRecorder`, with how the exchange ended at the HTTP level (``ok``, or
  ``transient`` for 5xx, 429 and network errors); the client refines the row once it has read the
  reply (``throttled``, ``error``, rows moved) through ``response.call_record``. Exchanges that raise
  before any response (refused connection, timeout) are recorded by the session's ``send``;
* **secret redaction**: urllib3 logs every request line, query string included, at DEBUG; the
  session's secrets are scrubbed from those records for as long as the session is open, and
  :func:`redact` is the one function that scrubs a text for an error or a log line;
* an injectable **transport** (a ``requests`` adapter mounted for ``http://`` and ``https://``):
  :class:`MockTransport` answers from a function, for tests of the layer itself.

:func:`retrying` is the one retry policy (tenacity): it retries only the transient error type the
client names, never a configuration error, with exponential back-off and jitter, logging each pause.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pendulum
import requests
import tenacity
from requests.adapters import BaseAdapter

CALL_COLUMNS = ["system", "method", "started", "ms", "outcome", "detail", "rows"]
REDACTED = "***"


# -- call recording -------------------------------------------------------------------------------------
class CallRecorder:
    """The exchanges of one client, from any of its threads: rows of :data:`CALL_COLUMNS`."""

    def __init__(self, system: str) -> None:
        self.system = system
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(
        self, method: str, ms: float, outcome: str, detail: str | None = None, started: str | None = None
    ) -> dict[str, Any]:
        """Record one exchange; the row stays editable (the client sets its final outcome and rows)."""
        row = {
            "system": self.system,
            "method": method,
            "started": started or _now_iso(),
            "ms": round(ms, 1),
            "outcome": outcome,
            "detail": detail,
            "rows": None,
        }
        with self._lock:
            self._rows.append(row)
        return row

    def take(self) -> list[dict[str, Any]]:
        """The rows recorded since the last take."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows


def _now_iso() -> str:
    return pendulum.now("UTC").isoformat()  # an instant: pages show it in the zone of the reader


def http_outcome(status: int) -> tuple[str, str | None]:
    """How an HTTP status ends an exchange before the body is read: 5xx and 429 may pass."""
    if status >= 500 or status == 429:
        return "transient", f"HTTP {status}"
    return ("ok", None) if status < 400 else ("error", f"HTTP {status}")


# -- secret redaction -----------------------------------------------------------------------------------
def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, plain or URL-encoded, replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, REDACTED)
    return text


def redact_fields(body: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of ``body`` with the values of ``keys`` (any case) replaced by ``***``."""
    hidden = {k.lower() for k in keys}
    return {k: REDACTED if k.lower() in hidden else v for k, v in body.items()}


class _SecretFilter(logging.Filter):
    """Scrubs the secrets of every open session from urllib3's records (one filter for all sessions)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[int, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def add(self, owner: object, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets[id(owner)] = tuple(s for s in secrets if s)

    def discard(self, owner: object) -> None:
        with self._lock:
            self._secrets.pop(id(owner), None)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = [s for group in self._secrets.values() for s in group]
        if secrets:
            message = record.getMessage()
            scrubbed = redact(message, secrets)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


_SECRET_FILTER = _SecretFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_SECRET_FILTER)


# -- the session ----------------------------------------------------------------------------------------
Describe = Callable[[requests.PreparedRequest], str]


class Session(requests.Session):
    """A ``requests.Session`` with a default timeout, call recording and secret redaction."""

    def __init__(
        self,
        *,
        timeout: float,
        recorder: CallRecorder | None,
        describe: Describe,
        secrets: Iterable[str] = (),
        transport: BaseAdapter | None = None,
    ) -> None:
        super().__init__()
        self.timeout = timeout
        self.recorder = recorder
        self.describe = describe
        if transport is not None:
            self.mount("http://", transport)
            self.mount("https://", transport)
        if recorder is not None:
            self.hooks["response"].append(self._record)
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Secrets scrubbed from urllib3's log records while this session is open."""
        _SECRET_FILTER.add(self, secrets)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        started, began = _now_iso(), time.perf_counter()
        try:
            return super().send(request, **kwargs)
        except requests.RequestException as exc:  # no response: the hook never runs
            if self.recorder is not None:
                self.recorder.add(
                    self.describe(request),
                    (time.perf_counter() - began) * 1000,
                    "transient",
                    type(exc).__name__,
                    started,
                )
            raise

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        assert self.recorder is not None
        outcome, detail = http_outcome(response.status_code)
        started = pendulum.now("UTC") - response.elapsed
        response.call_record = self.recorder.add(  # type: ignore[attr-defined]
            self.describe(response.request),
            response.elapsed / timedelta(milliseconds=1),
            outcome,
            detail,
            started.isoformat(),
        )
        return response

    def close(self) -> None:
        _SECRET_FILTER.discard(self)
        super().close()


def make_session(
    *,
    timeout: float,
    describe: Describe,
    recorder: CallRecorder | None = None,
    secrets: Iterable[str] = (),
    transport: BaseAdapter | None = None,
) -> Session:
    """The session every outbound call goes through (see the module docstring)."""
    return Session(timeout=timeout, recorder=recorder, describe=describe, secrets=secrets, transport=transport)


def call_record(response: requests.Response) -> dict[str, Any]:
    """The recorded row of ``response`` (a throwaway row when its session records nothing)."""
    return getattr(response, "call_record", {})


class MockTransport(BaseAdapter):
    """A transport answering from ``handler(request) -> (status, headers, body)``, for tests."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], tuple[int, Mapping[str, str], bytes]]) -> None:
        super().__init__()
        self.handler = handler

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        status, headers, body = self.handler(request)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


# -- retries --------------------------------------------------------------------------------------------
def backoff_delay(attempt: int, first: float, cap: float, *, jitter: bool = False) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``first`` doubled each time up to
    ``cap``, times 0.5-1 with ``jitter`` (so callers that failed together do not retry together)."""
    delay = min(cap, first * 2 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0) if jitter else delay


def retrying(
    transient: Callable[[BaseException], bool],
    *,
    attempts: int,
    backoff_seconds: float,
    max_backoff_seconds: float = 60.0,
    jitter: bool = False,
    log: logging.Logger,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[], None] | None = None,
) -> tenacity.Retrying:
    """Retry the errors ``transient(exc)`` accepts, and only those, ``attempts`` in all, pausing as
    :func:`backoff_delay` says; the last error is re-raised."""

    def pause(state: tenacity.RetryCallState) -> float:
        return backoff_delay(state.attempt_number, backoff_seconds, max_backoff_seconds, jitter=jitter)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.1f s",
            what,
            state.attempt_number,
            attempts,
            exc,
            state.upcoming_sleep,
        )
        if on_retry is not None:
            on_retry()

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(transient),
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=pause,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
