"""Injected transport faults and WDT's call quota; all off by default, deterministic for a seed.

- ``latency_ms``: every HTTP request waits that long before it is looked at (outside any lock, so that
  concurrent calls wait side by side, as they would on a slow network).
- Both transports (the Qimen gateway and the direct openapi2 endpoint) pass through the same faults,
  in arrival order.
- ``error_rate``: that share of requests is answered HTTP 5xx by the gateway's front end before the
  gateway sees it (so it neither counts against the quota nor triggers churn). Per request one draw from
  ``random.Random(f"wdt-faults-{seed}")`` decides, and a hit draws the status from 500/502/503; draws happen
  under a lock in arrival order, so a sequential client sees the same sequence for the same seed. TOP's
  front end (Tengine) answers such failures with its own pages, never the JSON envelope [INF]:
  500 ``text/plain`` "500 Internal Server Error"; 502 "Bad Gateway" and 503 "Service Temporarily
  Unavailable" as Tengine's small ``text/html`` pages.
- ``throttle_per_minute``: calls that passed the gateway checks and carry the right ``sid`` are counted
  per ``app_key`` in a sliding 60 s window (of the wall clock); a call beyond the quota is refused, and
  not counted, with WDT code 1012 "系统调用频繁,请稍后再试" (sub_code ``isv.call-limited``) in the Qimen
  business-error envelope (spec §6: integrators see 1012 from WDT at 60 calls/min). The openapi2
  endpoint counts signed calls per ``appkey`` in the same ``Throttle`` under ``openapi2:<appkey>`` and
  answers ``{"code":1012,...}``. 0 = unlimited.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable

SERVER_ERROR_STATUSES = (500, 502, 503)
_TENGINE_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1>"
    "</center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)


def server_error_body(status: int) -> tuple[str, bytes]:
    """Content-Type and body of the gateway front end's answer for `status`."""
    if status == 500:
        return "text/plain;charset=UTF-8", b"500 Internal Server Error"
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}[status]
    return "text/html", _TENGINE_PAGE.format(status=status, reason=reason).encode("ascii")


class Throttle:
    """Sliding 60-second window of accepted calls per key; it also keeps what it saw per key: the most
    calls accepted within any 60 s (``peak``) and the calls refused (``refused``)."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._calls: dict[str, deque[float]] = {}
        self.peak: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self.clock()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= self.per_minute:
                self.refused[key] = self.refused.get(key, 0) + 1
                return False
            calls.append(now)
            self.peak[key] = max(self.peak.get(key, 0), len(calls))
            return True


class Faults:
    """Latency and 5xx answers of the transport, drawn in request order."""

    def __init__(
        self,
        *,
        seed: int = 1,
        latency_ms: int = 0,
        error_rate: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError("error_rate must be within 0..1")
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self.latency_ms, self.error_rate, self._sleep = latency_ms, error_rate, sleep
        self._rng = random.Random(f"wdt-faults-{seed}")
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.latency_ms:
            self._sleep(self.latency_ms / 1000)

    def server_error(self) -> int | None:
        """The 5xx status to answer this request with, or None to serve it."""
        if self.error_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.error_rate:
                return None
            return self._rng.choice(SERVER_ERROR_STATUSES)
