"""Paging a WDT query: ``page_no`` from 0, ``total_count`` only on page 0.

WDT pages by offset, so an order that changes while we read can move between pages. Following WDT's
own advice (spec §7.3) the pages after the first are read from the last one back, and orders are
keyed by their id. A pass is trusted only when it is consistent: page 0, read again at its end,
announces the same total, and the pass held at least that many distinct orders. Otherwise another
pass reads the pages again (orders already seen are not yielded twice), up to ``max_passes``; then
:class:`PagingError` fails the task, whose retry reads the window again. A run never reports success
with pages it could not read.

Left to the look-back of later runs: an insert and a removal during the same pass, which leave the
total unchanged.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

log = logging.getLogger(__name__)

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
    max_passes: int = 3
    prefetch: int = 4  # pages requested ahead of the one being read

    def orders(self, fetch: Callable[[int, int], Page], what: str) -> Iterator[dict[str, Any]]:
        """Yield each distinct order once; ``fetch(page_no, page_size)`` returns a response object."""
        seen: set[str] = set()
        for attempt in range(1, self.max_passes + 1):
            first = fetch(self.start_page, self.page_size)
            total = self._total(first, what)
            pages = math.ceil(total / self.page_size)
            in_pass: set[str] = set()
            for page in self._pages(first, pages, fetch):
                yield from self._new(page, seen, in_pass, what)
            if pages <= 1:  # one response is one consistent snapshot
                return
            again = fetch(self.start_page, self.page_size)
            yield from self._new(again, seen, in_pass, what)
            now = self._total(again, what)
            if now == total and len(in_pass) >= total:
                return
            if attempt < self.max_passes:
                log.warning(
                    "%s: the orders changed while they were paged (%d announced, %d at the end, %d distinct "
                    "read); reading the pages again",
                    what,
                    total,
                    now,
                    len(in_pass),
                )
                continue
            raise PagingError(
                f"{what}: the orders changed while they were paged ({total} announced, {now} at the end, "
                f"{len(in_pass)} distinct read) in {self.max_passes} passes; read the window again"
            )

    def _total(self, page: Page, what: str) -> int:
        if self.total_key not in page:
            raise PagingError(f"{what}: page {self.start_page} has no {self.total_key}")
        return int(page[self.total_key])

    def _new(self, page: Page, seen: set[str], in_pass: set[str], what: str) -> Iterator[dict[str, Any]]:
        for order in page.get(self.list_key) or []:
            if order.get(self.id_key) in (None, ""):
                raise PagingError(
                    f"{what}: order {order.get('order_no')!r} has no {self.id_key}, the key of a stock-out"
                )
            key = str(order[self.id_key])
            in_pass.add(key)
            if key not in seen:
                seen.add(key)
                yield order

    def _pages(self, first: Page, pages: int, fetch: Callable[[int, int], Page]) -> Iterator[Page]:
        """Page 0, then the others last to first, ``prefetch`` requests ahead: while one page is
        written the next ones are on their way (the client's rate limit still spaces the calls)."""
        yield first
        numbers = iter(range(self.start_page + pages - 1, self.start_page, -1))
        with ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="wdt-page") as pool:
            ahead: deque[Future[Page]] = deque(
                pool.submit(fetch, n, self.page_size) for n in islice(numbers, self.prefetch)
            )
            while ahead:
                page = ahead.popleft().result()
                for n in islice(numbers, 1):
                    ahead.append(pool.submit(fetch, n, self.page_size))
                yield page
