"""Paging a WDT query: ``page_no`` from 0, ``total_count`` only on page 0.

WDT pages by offset, so an order that changes while we read can move between pages. Following WDT's
own advice (spec §7.3) the pages after the first are read from the last one back, orders are keyed by
their id, and a scan that ends with fewer distinct orders than page 0 announced is an error: the task
fails and its retry reads the window again, rather than silently missing an order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Page = dict[str, Any]


class PagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class TotalCountPaginator:
    page_size: int
    start_page: int
    list_key: str
    total_key: str
    id_key: str

    def orders(self, fetch: Callable[[int, int], Page], what: str) -> Iterator[dict[str, Any]]:
        """Yield each distinct order once; ``fetch(page_no, page_size)`` returns a response object."""
        first = fetch(self.start_page, self.page_size)
        if self.total_key not in first:
            raise PagingError(f"{what}: page {self.start_page} has no {self.total_key}")
        total = int(first[self.total_key])
        pages = math.ceil(total / self.page_size)
        seen: set[str] = set()
        for page in self._pages(first, pages, fetch):
            for order in page.get(self.list_key) or []:
                if order.get(self.id_key) in (None, ""):
                    raise PagingError(f"{what}: order {order.get('order_no')!r} has no {self.id_key}, the key of a stock-out")
                key = str(order[self.id_key])
                if key not in seen:
                    seen.add(key)
                    yield order
        if len(seen) < total:
            raise PagingError(
                f"{what}: page {self.start_page} announced {total} orders but the pages held {len(seen)} distinct ones; "
                "orders changed while paging, read the window again"
            )

    def _pages(self, first: Page, pages: int, fetch: Callable[[int, int], Page]) -> Iterator[Page]:
        yield first
        for page_no in range(self.start_page + pages - 1, self.start_page, -1):
            yield fetch(page_no, self.page_size)
