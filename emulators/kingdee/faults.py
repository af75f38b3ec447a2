"""Injected latency and faults: slow answers, 5xx, lost replies, busy server, network control, call limit.

All off by default. Every random decision comes from one ``random.Random("kingdee-faults-<seed>")``
drawn under a lock, four numbers per service call whatever is switched on, so a given seed and the same
sequence of calls give the same faults.

Decisions ([INF]/[?] points of the spec), in the order a call meets them:
- ``max_concurrent`` N [INF]: a call arriving while N calls are in progress is answered at once, before
  anything else, with HTTP 503 and the fixed HTTP.sys text ``BUSY_BODY`` (``HTTP Error 503. The
  service is unavailable.``, what IIS answers when its application-pool queue is full); nothing is done.
- ``call_limit_per_minute`` N: a call is refused when N calls were accepted in the 60 s before it (a
  sliding window over every service, logins included; refused calls do not count). Answer: HTTP 200, the
  §4.1/§4.4 envelope with MsgCode 14 (调用限制) and the message ``CALL_LIMIT`` (text [?]), wrapped like the
  service's rows for the query services; nothing is done.
- ``latency_ms``: every service call (faulted ones included, busy ones excepted) waits that long before
  it is worked on. ``per_bill_ms``: Save/BatchSave answer no sooner than that many ms per bill in Model
  after the work began (after the latency); the work itself (parsing, validation, the write under the
  store lock) counts toward it, so concurrent saves overlap like threads of a real server and only the
  write is serialised. A BatchSaveQuery task counts from the moment its thread starts.
- ``error_rate`` R: a share R of calls (every service, logins too) is answered HTTP 500 with the Chinese
  IIS error page ``IIS_500_BODY`` (text/html) before anything is done.
- ``response_error_rate`` R: a share R of calls is answered HTTP 200, text/plain,
  ``response_error:`` + ``RESPONSE_ERROR`` (spec §1.1: the SDK's ``ValidResult`` raises RuntimeError;
  status and text [?]); nothing is done.
- ``network_control_rate`` R: a share R of Save/BatchSave/Submit/Audit/UnAudit/Delete calls that passed
  the auth gate is answered HTTP 200 with the MsgCode 13 (网控冲突) envelope and the message
  ``NETWORK_CONTROL`` (text [?]); nothing is written. A BatchSaveQuery gets it as the Result of a task
  that is complete at once (Status 2).
- ``lost_response_rate`` R: for a share R of Save/BatchSave calls the write is applied and committed as
  usual, then the reply is lost: the first such call has its TCP connection closed without a byte of
  reply, the second gets HTTP 500 with ``IIS_500_BODY``, and so on alternately. With ``beginmethod``
  (BatchSaveQuery) it is the reply carrying the TaskId that is lost; the task still runs.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass

# What HTTP.sys sends when the application pool's queue is full.
BUSY_BODY = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
    "<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
    '<META HTTP-EQUIV="Content-Type" Content-Type="text/html; charset=us-ascii"></HEAD>\r\n'
    "<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n"
    "</BODY></HTML>\r\n"
)
# The Chinese IIS custom error page for a 500.
IIS_500_BODY = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>\r\n'
    "<title>500 - 内部服务器错误。</title>\r\n</head>\r\n<body>\r\n"
    '<div id="header"><h1>服务器错误</h1></div>\r\n<div id="content">\r\n'
    ' <div class="content-container"><fieldset>\r\n  <h2>500 - 内部服务器错误。</h2>\r\n'
    "  <h3>您查找的资源存在问题，因而无法显示。</h3>\r\n </fieldset></div>\r\n</div>\r\n"
    "</body>\r\n</html>\r\n"
)
RESPONSE_ERROR = "Kingdee.BOS.KDException: 服务端处理请求时发生异常，请求未被执行，请稍后重试。"
NETWORK_CONTROL = "网控冲突：单据正在被其他用户或进程操作，请稍后再试！"
CALL_LIMIT = "调用限制：接口调用次数超过每分钟{limit}次的限制，请稍后再试！"
MSG_NETWORK_CONTROL = 13
MSG_CALL_LIMIT = 14
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0
    per_bill_ms: float = 0
    error_rate: float = 0
    lost_response_rate: float = 0
    max_concurrent: int | None = None
    network_control_rate: float = 0
    call_limit_per_minute: int | None = None
    response_error_rate: float = 0


@dataclass(frozen=True)
class Draw:
    """The faults decided for one call (each one used only where it applies)."""

    server_error: bool = False
    response_error: bool = False
    network_control: bool = False
    lost: str | None = None  # "close" | "500", used by Save/BatchSave only


class Faults:
    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self._rng = random.Random(f"kingdee-faults-{seed}")
        self._lock = threading.Lock()
        self._in_progress = 0
        self._accepted: deque[float] = deque()
        self._lost = 0
        # what the server saw, for tests of callers that must stay under a cap
        self.peak_in_progress = 0
        self.refused_busy = 0

    # -- admission ------------------------------------------------------------------------------
    def enter(self) -> bool:
        """Count a call in; False (and not counted) when ``max_concurrent`` calls are in progress."""
        with self._lock:
            limit = self.config.max_concurrent
            if limit is not None and self._in_progress >= limit:
                self.refused_busy += 1
                return False
            self._in_progress += 1
            self.peak_in_progress = max(self.peak_in_progress, self._in_progress)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_progress -= 1

    def over_call_limit(self) -> bool:
        limit = self.config.call_limit_per_minute
        if limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._accepted and now - self._accepted[0] >= WINDOW_SECONDS:
                self._accepted.popleft()
            if len(self._accepted) >= limit:
                return True
            self._accepted.append(now)
            return False

    # -- random faults --------------------------------------------------------------------------
    def draw(self, *, saving: bool) -> Draw:
        """This call's faults; ``saving``: a Save/BatchSave call, the only ones whose reply may be lost."""
        c = self.config
        with self._lock:
            error, response_error, network, lost = (self._rng.random() for _ in range(4))
            lost_kind = None
            if saving and lost < c.lost_response_rate:
                lost_kind = "close" if self._lost % 2 == 0 else "500"
                self._lost += 1
        return Draw(
            error < c.error_rate, response_error < c.response_error_rate, network < c.network_control_rate, lost_kind
        )

    # -- time -----------------------------------------------------------------------------------
    def wait_latency(self) -> None:
        if self.config.latency_ms > 0:
            time.sleep(self.config.latency_ms / 1000)

    def bill_deadline(self, begun: float, bills: int) -> float:
        """When a save of ``bills`` bills whose work began at ``begun`` may answer (``time.monotonic``)."""
        return begun + self.config.per_bill_ms * bills / 1000

    @staticmethod
    def wait_until(deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
