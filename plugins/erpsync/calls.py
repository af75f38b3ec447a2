"""One row per HTTP exchange with WDT or Kingdee, kept per window for the API catalog's figures.

The clients time each exchange (a retry is a row of its own) and say how it ended: ``ok``,
``throttled`` (WDT's 1012/Qimen 7), ``transient`` (network, 5xx, busy: retried) or ``error`` (refused
by configuration or data). The steps write what their task's client recorded as one Parquet part,
``<window>/calls/<task>-<utc time>.parquet``, also when the task fails, so failed attempts count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pendulum

from erpsync.staging import RunFiles, write_parquet

CALL_COLUMNS = ["system", "method", "started", "ms", "outcome", "detail", "rows"]


class CallRecorder:
    """The exchanges of one client, from any of its threads."""

    def __init__(self, system: str) -> None:
        self.system = system
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @contextmanager
    def exchange(self, method: str) -> Iterator[dict[str, Any]]:
        """Time one exchange; the caller may set ``outcome``, ``detail`` and ``rows`` on the yielded row.
        An exception leaving the block marks it ``error`` unless the caller said otherwise."""
        row: dict[str, Any] = {"system": self.system, "method": method, "outcome": "ok", "detail": None, "rows": None,
                               "started": pendulum.now("Asia/Shanghai").isoformat()}
        began = time.perf_counter()
        try:
            yield row
        except BaseException:
            if row["outcome"] == "ok":
                row["outcome"] = "error"
            raise
        finally:
            row["ms"] = round((time.perf_counter() - began) * 1000, 1)
            with self._lock:
                self._rows.append(row)

    def take(self) -> list[dict[str, Any]]:
        """The rows recorded since the last take."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows


def write_calls(recorder: CallRecorder | None, files: RunFiles, task: str) -> None:
    """Add what ``recorder`` holds to the window's ``calls/`` folder (nothing when it recorded nothing)."""
    import pandas as pd

    rows = recorder.take() if recorder is not None else []
    if rows:
        frame = pd.DataFrame(rows, columns=CALL_COLUMNS).astype({"ms": "float64", "rows": "Int64"})
        write_parquet(frame, files.calls / f"{task}-{pendulum.now('UTC').format('YYYYMMDD[T]HHmmssSSSSSS')}.parquet")
