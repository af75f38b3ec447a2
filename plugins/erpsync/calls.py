"""The calls the clients recorded, kept per window for the API catalog's figures.

Each client's :class:`~erpsync.transport.CallRecorder` holds one row per HTTP exchange (a retry is a
row of its own) saying how it ended: ``ok``, ``throttled`` (WDT's 1012/Qimen 7), ``transient``
(network, 5xx, busy: retried) or ``error`` (refused by configuration or data). The steps write what
their task's client recorded as one Parquet part, ``<window>/calls/<task>-<utc time>.parquet``, also
when the task fails, so failed attempts count.
"""

from __future__ import annotations

import pendulum

from erpsync.staging import RunFiles, write_parquet
from erpsync.transport import CALL_COLUMNS, CallRecorder


def write_calls(recorder: CallRecorder | None, files: RunFiles, task: str) -> None:
    """Add what ``recorder`` holds to the window's ``calls/`` folder (nothing when it recorded nothing)."""
    import pandas as pd

    rows = recorder.take() if recorder is not None else []
    if rows:
        frame = pd.DataFrame(rows, columns=CALL_COLUMNS).astype({"ms": "float64", "rows": "Int64"})
        write_parquet(frame, files.calls / f"{task}-{pendulum.now('UTC').format('YYYYMMDD[T]HHmmssSSSSSS')}.parquet")
