"""Extract: every stock-out of a window from WDT into ``orders.parquet`` and ``lines.parquet``.

Every field of the response is kept, as the exact text WDT sent (numbers included), so nothing is
lost or rounded before the pipeline decides what a field means. Nested lists other than the lines
(e.g. ``position_list``) are kept as JSON text.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import pandas as pd

from erpsync.scheme import Scheme
from erpsync.staging import RunFiles, write_json, write_parquet
from erpsync.wdt.paging import TotalCountPaginator
from erpsync.windows import Window

log = logging.getLogger(__name__)

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
    start, end = window.api_bounds()
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


def _frame(rows: list[dict[str, str | None]], known: list[str]) -> pd.DataFrame:
    """All columns as nullable strings: the known fields first, then any extra ones WDT sent."""
    extra = [c for c in dict.fromkeys(k for row in rows for k in row) if c not in known]
    columns = [*known, *extra]
    return pd.DataFrame(rows, columns=columns, dtype=object).astype("string")


def extract(
    scheme: Scheme,
    window: Window,
    client: WdtCaller,
    files: RunFiles,
    filters: Mapping[str, str] | None = None,
) -> ExtractResult:
    api = scheme.source.api
    paginator = TotalCountPaginator(
        page_size=scheme.source.page_size,
        start_page=scheme.source.start_page,
        list_key=api.list_key,
        total_key=api.total_key,
        id_key=api.order_key,
    )
    orders: dict[str, dict[str, Any]] = {}
    calls_before = getattr(client, "calls", 0)
    sub_windows = window.split(timedelta(days=api.max_window_days))
    for sub in sub_windows:
        params = request_params(scheme, sub, filters)

        def fetch(page_no: int, page_size: int, params: dict[str, str] = params) -> dict[str, Any]:
            return client.call(api.method, {**params, "page_no": str(page_no), "page_size": str(page_size)})

        for order in paginator.orders(fetch, f"{api.method} {sub}"):
            orders[str(order.get(api.order_key))] = order  # keyed by WDT's id: one row per stock-out
        log.info("Read %s: %d orders so far", sub, len(orders))

    order_rows, line_rows = [], []
    for order in orders.values():
        lines = order.get(api.line_list_key) or []
        if not isinstance(lines, list):
            raise ExtractError(f"order {order.get('order_no')!r}: {api.line_list_key} is not a list")
        order_rows.append({k: _text(v) for k, v in order.items() if k != api.line_list_key})
        for line in lines:
            row = {k: _text(v) for k, v in line.items()}
            row.setdefault(api.order_key, _text(order.get(api.order_key)))
            line_rows.append(row)

    if filters:
        write_json(dict(filters), files.filters)
    write_parquet(_frame(order_rows, list(api.order_fields)), files.orders)
    write_parquet(_frame(line_rows, list(api.line_fields)), files.lines)
    calls = getattr(client, "calls", 0) - calls_before
    log.info("Extracted %d orders and %d lines of %s in %d calls", len(order_rows), len(line_rows), window, calls)
    return ExtractResult(len(order_rows), len(line_rows), calls, len(sub_windows))
