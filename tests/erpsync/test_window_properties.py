"""Properties of window slicing and look-back, for any windows and spans (hypothesis).

* A window split into sub-windows of at most the API's span covers every second of ``[start, end)``
  exactly once, also in WDT's inclusive ``start_time``/``end_time`` form.
* Consecutive runs with a look-back read every instant at least once, and an order whose last
  modification falls anywhere in the runs' windows is read by at least one run and, through the
  look-up before save, created exactly once.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pendulum
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.wdt.connector import api_bounds
from erpsync.windows import Window

WDT_API = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml").source.api
BASE = pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai")
seconds = st.integers(min_value=0, max_value=90 * 86400)
spans = st.integers(min_value=1, max_value=30 * 86400)


def _wdt_seconds(window: Window) -> tuple[int, int]:
    """The inclusive [start_time, end_time] WDT is sent, as seconds after BASE."""
    start, end = api_bounds(window, WDT_API)
    return _seconds_after_base(start), _seconds_after_base(end)


def _seconds_after_base(text: str) -> int:
    moment = pendulum.parse(text, tz="Asia/Shanghai")
    assert isinstance(moment, pendulum.DateTime)
    return int((moment - BASE).total_seconds())


@given(start=seconds, length=st.integers(min_value=1, max_value=90 * 86400), span=spans)
@settings(max_examples=300, deadline=None)
def test_sub_windows_cover_every_second_exactly_once(start, length, span):
    assume(length / span <= 500)  # a few hundred sub-windows at most: the property, not a stress test
    window = Window(BASE.add(seconds=start), BASE.add(seconds=start + length))
    parts = window.split(timedelta(seconds=span))
    assert parts[0].start == window.start and parts[-1].end == window.end
    for a, b in pairwise(parts):
        assert a.end == b.start  # contiguous: no gap, no overlap
    assert all(p.end - p.start <= timedelta(seconds=span) for p in parts)
    inclusive = [_wdt_seconds(p) for p in parts]
    for (_, end), (next_start, _) in pairwise(inclusive):
        assert next_start == end + 1  # WDT's closed intervals neither miss nor repeat a second
    assert inclusive[0][0] == start and inclusive[-1][1] == start + length - 1


@given(
    first=seconds,
    step=st.integers(min_value=60, max_value=86400),
    runs=st.integers(min_value=1, max_value=30),
    lookback=st.integers(min_value=0, max_value=3 * 86400),
    modified=st.lists(st.floats(min_value=0, max_value=1), min_size=0, max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_runs_with_a_look_back_read_every_instant_and_create_each_order_once(first, step, runs, lookback, modified):
    windows = [
        Window(BASE.add(seconds=first + i * step), BASE.add(seconds=first + (i + 1) * step)) for i in range(runs)
    ]
    reads = [Window(w.start - timedelta(seconds=lookback), w.end) for w in windows]
    span_start, span_end = first, first + runs * step
    # orders last modified at any whole second of the runs' windows
    orders = {i: span_start + int(f * (span_end - span_start - 1)) for i, f in enumerate(modified)}

    kingdee: dict[int, int] = {}  # order -> number of bills
    read_by = dict.fromkeys(orders, 0)
    for read in reads:
        lo, hi = _wdt_seconds(read)
        for order, at in orders.items():
            if lo <= at <= hi:
                read_by[order] += 1
                if order not in kingdee:  # the look-up before save
                    kingdee[order] = 0
                    kingdee[order] += 1
    assert all(count >= 1 for count in read_by.values())
    assert kingdee == dict.fromkeys(orders, 1)
    if lookback >= step:  # a look-back of a whole window means every order is read twice or more
        assert all(count >= 2 for order, count in read_by.items() if orders[order] < span_end - step)
