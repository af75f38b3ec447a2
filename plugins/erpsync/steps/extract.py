"""Extract: every order of a window from the source into ``orders.parquet`` and ``lines.parquet``.

Every field of the response is kept, as the exact text WDT sent (numbers included), so nothing is
lost or rounded before the pipeline decides what a field means. Nested lists other than the lines
(e.g. ``position_list``) are kept as JSON text; fields the API definition does not know go into the
``extra`` column. Pages stream into Parquet row groups, so memory does not grow with the window.

The read covers the run's window and the scheme's ``lookback`` before it; with ``by_modified`` the
window is on the source's last-modified time, so an order that completes after its consignment day
is read by the run whose window holds its completion. Orders read by several runs are found in the
target by the load step and not sent again. How the window is asked for (time format, sub-windows,
paging) is the source connector's business (``erpsync.connectors``): this step stages what its reader
yields. The reader logs one line per call; ``extract_summary.json`` says what was read.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from erpsync.calls import write_calls
from erpsync.connectors import Reader
from erpsync.run import Run
from erpsync.scheme import SourceApi
from erpsync.staging import put_file, write_json
from erpsync.windows import Window

log = logging.getLogger(__name__)

EXTRA_COLUMN = "extra"  # fields the source sent that the API definition does not know, as a JSON object


class ExtractError(ValueError):
    pass


@dataclass(frozen=True)
class ExtractResult:
    orders: int
    lines: int
    calls: int
    sub_windows: int


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class _ParquetStream:
    """Rows into one Parquet file in row groups: memory holds one group, not the window.

    The schema is explicit: every field the API definition knows, as exact text, then ``extra``, a
    JSON object of any field WDT sent that the definition does not know (kept, not dropped). Rows are
    turned into Arrow a batch at a time as pages arrive (small: converting one never stalls the pages
    arriving meanwhile) and written as row groups of ``GROUP_ROWS``: a reader loads the file's footer
    whole, about 1 KB per column per row group, so small groups would make every later step's memory
    grow with the window.
    """

    BATCH_ROWS = 1000
    GROUP_ROWS = 10_000

    def __init__(self, fields: list[str], local: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.fields = fields
        self._known = set(fields)
        self.schema = pa.schema([(f, pa.string()) for f in [*fields, EXTRA_COLUMN]])
        self._writer = pq.ParquetWriter(local, self.schema)
        self._buffer: list[dict[str, str | None]] = []
        self._batches: list[Any] = []  # Arrow batches of the row group being gathered
        self._pending = 0
        self.rows = 0

    def add(self, row: dict[str, str | None]) -> None:
        extra = {k: v for k, v in row.items() if k not in self._known}
        self._buffer.append(
            {
                **{f: row.get(f) for f in self.fields},
                EXTRA_COLUMN: json.dumps(extra, ensure_ascii=False) if extra else None,
            }
        )
        self.rows += 1
        if len(self._buffer) >= self.BATCH_ROWS:
            self._convert()
            if self._pending >= self.GROUP_ROWS:
                self._write()

    def _convert(self) -> None:
        import pyarrow as pa

        if self._buffer:
            self._batches.append(pa.RecordBatch.from_pylist(self._buffer, schema=self.schema))
            self._pending += len(self._buffer)
            self._buffer = []

    def _write(self) -> None:
        import pyarrow as pa

        if self._batches:
            self._writer.write_table(
                pa.Table.from_batches(self._batches, schema=self.schema), row_group_size=self.GROUP_ROWS
            )
            self._batches, self._pending = [], 0

    def close(self) -> None:
        self._convert()
        self._write()
        self._writer.close()


def extract(run: Run, reader: Reader) -> ExtractResult:
    """Read the run's window (and the scheme's look-back before it) into ``orders.parquet``/``lines.parquet``."""
    files, window = run.files, run.window
    read = Window(window.start - run.scheme.source.lookback, window.end)
    began = time.monotonic()
    # opening the staging filesystem costs a quarter second the first time: do it while page 0 travels
    prepared = threading.Thread(target=files.dir.mkdir, kwargs={"parents": True, "exist_ok": True}, daemon=True)
    prepared.start()
    calls_before = reader.calls
    try:
        orders, lines = _read(run, reader, read)
    finally:  # failed attempts' calls count in the API catalog too
        prepared.join()
        write_calls(reader.recorder, files, "extract")
    result = ExtractResult(orders, lines, reader.calls - calls_before, reader.sub_windows)
    if run.filters:
        write_json(dict(run.filters), files.filters)
    summary = {
        "window": window.as_dict(),
        "read": read.as_dict(),
        "filters": dict(run.filters),
        **asdict(result),
        "pages": reader.pages,
        "retries": reader.retries,
        "throttled_seconds": reader.throttled_seconds,
        "seconds": round(time.monotonic() - began, 3),
    }
    write_json(summary, files.extract_summary)
    log.info(
        "Extracted %d orders and %d lines of %s (read from %s) in %d calls",
        result.orders,
        result.lines,
        window,
        read.start,
        result.calls,
    )
    return result


def _read(run: Run, reader: Reader, read: Window) -> tuple[int, int]:
    """Every order the reader yields into the two Parquet files, published when all are read."""
    api = run.scheme.source.api
    files = run.files
    with tempfile.TemporaryDirectory(prefix="erpsync-extract-") as tmp:
        orders = _ParquetStream(list(api.order_fields), Path(tmp) / "orders.parquet")
        lines = _ParquetStream(
            [api.order_key, *[f for f in api.line_fields if f != api.order_key]], Path(tmp) / "lines.parquet"
        )
        try:
            for order in reader.orders(read, run.filters):
                _stage(order, api, orders, lines)
        finally:
            orders.close()
            lines.close()
        put_file(Path(tmp) / "orders.parquet", files.orders)  # makes the folder if the warm-up has not yet
        put_file(Path(tmp) / "lines.parquet", files.lines)
    return orders.rows, lines.rows


def stage_rows(order: Mapping[str, Any], api: SourceApi) -> tuple[dict[str, str | None], list[dict[str, str | None]]]:
    """One order as the API returned it -> its staged row and its line rows, every value as text."""
    details = order.get(api.line_list_key) or []
    if not isinstance(details, list):
        raise ExtractError(f"order {order.get(api.number_key)!r}: {api.line_list_key} is not a list")
    row = {k: _text(v) for k, v in order.items() if k != api.line_list_key}
    lines = []
    for line in details:
        if not isinstance(line, Mapping):
            raise ExtractError(f"order {order.get(api.number_key)!r}: a {api.line_list_key} entry is not an object")
        staged = {k: _text(v) for k, v in line.items()}
        staged.setdefault(api.order_key, _text(order.get(api.order_key)))
        lines.append(staged)
    return row, lines


def _stage(order: dict[str, Any], api: SourceApi, orders: _ParquetStream, lines: _ParquetStream) -> None:
    row, line_rows = stage_rows(order, api)
    orders.add(row)
    for line in line_rows:
        lines.add(line)
