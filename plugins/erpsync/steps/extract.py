"""Extract: every stock-out of a window from WDT into ``orders.parquet`` and ``lines.parquet``.

Every field of the response is kept, as the exact text WDT sent (numbers included), so nothing is
lost or rounded before the pipeline decides what a field means. Nested lists other than the lines
(e.g. ``position_list``) are kept as JSON text; fields the API definition does not know go into the
``extra`` column. Pages stream into Parquet row groups, so memory does not grow with the window.

The read covers the run's window and the scheme's ``lookback`` before it; with ``by_modified`` the
window is on WDT's last-modified time (spec §4.1), so an order that completes after its consignment
day is read by the run whose window holds its completion. Orders read by several runs are found in
Kingdee by the load step and not sent again. One log line per call (sub-window, page, rows,
latency) and ``extract_summary.json`` say what was read.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from erpsync.calls import write_calls
from erpsync.scheme import Scheme, SourceApi
from erpsync.staging import RunFiles, put_file, write_json
from erpsync.wdt.paging import TotalCountPaginator
from erpsync.windows import Window

log = logging.getLogger(__name__)

EXTRA_COLUMN = "extra"  # fields WDT sent that the API definition does not know, as a JSON object
_SYSTEM_PLACEHOLDER = re.compile(r"^\{\{\s*([A-Z_]+)\s*\}\}$")


class WdtCaller(Protocol):
    def call(self, method: str, params: Mapping[str, str]) -> dict[str, Any]: ...


class ExtractError(ValueError):
    pass


@dataclass(frozen=True)
class ExtractResult:
    orders: int
    lines: int
    calls: int
    sub_windows: int


def request_params(scheme: Scheme, window: Window, filters: Mapping[str, str] | None = None) -> dict[str, str]:
    """The request of the scheme for one (sub-)window, without the page fields.

    ``filters`` (the documented examples: one stockout_no, one shop_no, …) may set only parameters that
    the scheme leaves empty; they never replace the window, the paging or the scheme's constants.
    """
    start, end = window.api_bounds(scheme.source.api.window_inclusive_end)
    system = {
        "WINDOW_START": start,
        "WINDOW_END": end,
        "PAGINATION_PAGE_SIZE": str(scheme.source.page_size),
        "PAGINATION_START_PAGE": str(scheme.source.start_page),
    }
    params: dict[str, str] = {}
    for param in scheme.source.request:
        match = _SYSTEM_PLACEHOLDER.match(param.value.strip())
        if match:
            if match.group(1) not in system:
                raise ExtractError(f"{scheme.path}: request {param.field}: unknown placeholder {param.value!r}")
            params[param.field] = system[match.group(1)]
        elif param.value.strip():
            params[param.field] = param.value.strip()
    if scheme.source.by_modified:
        params["is_by_modified"] = "1"
    params.update(scheme.source.check_filters(filters or {}))
    return params


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


def extract(
    scheme: Scheme,
    window: Window,
    client: WdtCaller,
    files: RunFiles,
    filters: Mapping[str, str] | None = None,
) -> ExtractResult:
    """Read the window (and the scheme's look-back before it) into ``orders.parquet``/``lines.parquet``."""
    api = scheme.source.api
    paginator = TotalCountPaginator(
        page_size=scheme.source.page_size,
        start_page=scheme.source.start_page,
        list_key=api.list_key,
        total_key=api.total_key,
        id_key=api.order_key,
    )
    read = Window(window.start - scheme.source.lookback, window.end)
    sub_windows = read.split(timedelta(days=api.max_window_days))
    began = time.monotonic()
    pages: list[int] = []  # page numbers read; appended from the prefetching threads
    # opening the staging filesystem costs a quarter second the first time: do it while page 0 travels
    prepared = threading.Thread(target=files.dir.mkdir, kwargs={"parents": True, "exist_ok": True}, daemon=True)
    prepared.start()
    try:
        result = _read(scheme, api, paginator, sub_windows, client, files, filters, pages)
    finally:  # failed attempts' calls count in the API catalog too
        prepared.join()
        write_calls(getattr(client, "recorder", None), files, "extract")
    if filters:
        write_json(dict(filters), files.filters)
    summary = {
        "window": window.as_dict(),
        "read": read.as_dict(),
        "filters": dict(filters or {}),
        **asdict(result),
        "pages": len(pages),
        "retries": getattr(client, "retries", 0),
        "throttled_seconds": getattr(client, "throttled_seconds", 0.0),
        "seconds": round(time.monotonic() - began, 3),
    }
    write_json(summary, files.extract_summary)
    log.info(
        "Extracted %d orders and %d lines of %s (read from %s) in %d calls",
        result.orders,
        result.lines,
        window,
        read.start.format("YYYY-MM-DD HH:mm:ss"),
        result.calls,
    )
    return result


def _read(
    scheme: Scheme,
    api: SourceApi,
    paginator: TotalCountPaginator,
    sub_windows: list[Window],
    client: WdtCaller,
    files: RunFiles,
    filters: Mapping[str, str] | None,
    pages: list[int],
) -> ExtractResult:
    """Every page of every sub-window into the two Parquet files, published when all are read."""
    calls_before = getattr(client, "calls", 0)
    with tempfile.TemporaryDirectory(prefix="erpsync-extract-") as tmp:
        orders = _ParquetStream(list(api.order_fields), Path(tmp) / "orders.parquet")
        lines = _ParquetStream(
            [api.order_key, *[f for f in api.line_fields if f != api.order_key]], Path(tmp) / "lines.parquet"
        )
        try:
            for sub in sub_windows:
                params = request_params(scheme, sub, filters)

                def fetch(
                    page_no: int, page_size: int, params: dict[str, str] = params, sub: Window = sub
                ) -> dict[str, Any]:
                    started = time.monotonic()
                    response = client.call(api.method, {**params, "page_no": str(page_no), "page_size": str(page_size)})
                    pages.append(page_no)
                    log.info(
                        "WDT %s %s page %d: %d orders, total_count %s, %.0f ms",
                        api.method,
                        sub,
                        page_no,
                        len(response.get(api.list_key) or []),
                        response.get(api.total_key, "-"),
                        (time.monotonic() - started) * 1000,
                    )
                    return response

                for order in paginator.orders(fetch, f"{api.method} {sub}"):
                    _stage(order, api, orders, lines)
        finally:
            orders.close()
            lines.close()
        put_file(Path(tmp) / "orders.parquet", files.orders)  # makes the folder if the warm-up has not yet
        put_file(Path(tmp) / "lines.parquet", files.lines)
    return ExtractResult(orders.rows, lines.rows, getattr(client, "calls", 0) - calls_before, len(sub_windows))


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
