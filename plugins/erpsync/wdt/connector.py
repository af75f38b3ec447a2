"""The WDT source connector: how a window of a WDT query API is asked for and read.

Everything WDT-specific about a read lives here and in the API definition it reads
(``include/apis/<method>.yaml``): the window's time format and zone (``time_format``, ``timezone``;
WDT reads ``yyyy-MM-dd HH:mm:ss`` Asia/Shanghai), whether its end is inclusive, the longest span per
call (``max_window_days``: a longer window is read in sub-windows), the parameters that put the window
on last-modified time (``by_modified_params``, e.g. ``is_by_modified=1``), the paging parameter names
and WDT's back-to-front paging (:mod:`erpsync.wdt.paging`). The scheme's request rows give the rest.
The extract step only stages what :meth:`WdtReader.orders` yields.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import timedelta
from typing import Any, Protocol

from erpsync.connections import ConnectionConfigError
from erpsync.scheme import SchemeError, Source, SourceApi
from erpsync.wdt.client import WdtConfigError
from erpsync.wdt.paging import TotalCountPaginator
from erpsync.windows import Window

log = logging.getLogger(__name__)

# a connection or credential that no retry can fix: the task fails at once
CONFIG_ERRORS: tuple[type[Exception], ...] = (ConnectionConfigError, WdtConfigError)

_SYSTEM_PLACEHOLDER = re.compile(r"^\{\{\s*([A-Z_]+)\s*\}\}$")


class WdtCaller(Protocol):
    def call(self, method: str, params: Mapping[str, str]) -> dict[str, Any]: ...


def api_bounds(window: Window, api: SourceApi) -> tuple[str, str]:
    """``start_time`` and ``end_time`` of ``window`` as the API reads them: in its zone and format, the
    end one second early when the API includes it (WDT's windows are closed intervals, spec §4.1)."""
    end = window.end - timedelta(seconds=1) if api.window_inclusive_end else window.end
    return (
        window.start.in_timezone(api.timezone).format(api.time_format),
        end.in_timezone(api.timezone).format(api.time_format),
    )


def request_params(source: Source, window: Window, filters: Mapping[str, str] | None = None) -> dict[str, str]:
    """The request of the scheme for one (sub-)window, without the page fields.

    ``filters`` (the documented examples: one stockout_no, one shop_no, …) may set only parameters that
    the scheme leaves empty; they never replace the window, the paging or the scheme's constants.
    """
    start, end = api_bounds(window, source.api)
    system = {
        "WINDOW_START": start,
        "WINDOW_END": end,
        "PAGINATION_PAGE_SIZE": str(source.page_size),
        "PAGINATION_START_PAGE": str(source.start_page),
    }
    params: dict[str, str] = {}
    for param in source.request:
        match = _SYSTEM_PLACEHOLDER.match(param.value.strip())
        if match:
            if match.group(1) not in system:
                raise SchemeError(f"source.request {param.field}: unknown placeholder {param.value!r}")
            params[param.field] = system[match.group(1)]
        elif param.value.strip():
            params[param.field] = param.value.strip()
    if source.by_modified:
        params.update(source.api.by_modified_params)
    params.update(source.check_filters(filters or {}))
    return params


class WdtReader:
    """Reads the orders of a window from one WDT connection, each order once."""

    def __init__(self, client: WdtCaller, source: Source) -> None:
        api = source.api
        self.client = client
        self.source = source
        self.paginator = TotalCountPaginator(
            page_size=source.page_size,
            start_page=source.start_page,
            list_key=api.list_key,
            total_key=api.total_key,
            id_key=api.order_key,
        )
        self.sub_windows = 0  # (sub-)windows asked for, one query each
        self.pages = 0  # pages read

    # the client's counters, for the extract summary and the API catalog
    @property
    def calls(self) -> int:
        return int(getattr(self.client, "calls", 0))

    @property
    def retries(self) -> int:
        return int(getattr(self.client, "retries", 0))

    @property
    def throttled_seconds(self) -> float:
        return float(getattr(self.client, "throttled_seconds", 0.0))

    @property
    def recorder(self) -> Any:
        return getattr(self.client, "recorder", None)

    def orders(self, window: Window, filters: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every order of ``window``, as WDT returned it, in sub-windows no longer than the API allows."""
        api = self.source.api
        for sub in window.split(timedelta(days=api.max_window_days)):
            self.sub_windows += 1
            params = request_params(self.source, sub, filters)

            def fetch(
                page_no: int, page_size: int, params: dict[str, str] = params, sub: Window = sub
            ) -> dict[str, Any]:
                started = time.monotonic()
                response = self.client.call(
                    api.method, {**params, api.page_no_param: str(page_no), api.page_size_param: str(page_size)}
                )
                self.pages += 1
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

            yield from self.paginator.orders(fetch, f"{api.method} {sub}")


@contextmanager
def open_reader(source: Source, connection_id: str | None = None) -> Iterator[WdtReader]:
    """A reader on the scheme's WDT connection (or ``connection_id``), closed afterwards."""
    from erpsync.wdt.hook import WdtHook

    with closing(WdtHook(connection_id or source.connection).get_conn()) as client:
        yield WdtReader(client, source)
