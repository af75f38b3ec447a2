"""Refund and purchase stock-in queries: ``wdt.stockin.order.query.refund`` (退货入库单) and
``wdt.stockin.order.query.purchase`` (采购入库单), on the Qimen gateway and the direct openapi2 endpoint.

Follows /work/shared/protocols/wdt-qimen-stockin.md; the data are :mod:`emulators.stockins` (built from
the same data set as the stock-outs). Gateway, signatures, envelopes, seller check, quota, faults and
error shapes are the stock-out API's (:mod:`.server`, :mod:`.openapi2`, :mod:`.faults`). Decisions on the
points the spec marks [INF]/[UNCONFIRMED]:

Clock (as :mod:`.timeline` does for stock-outs): each stock-in is a history of states (20 编辑中 -> 30
待审核 -> 80 已完成, or a stop at 10/20/25/30/60, and sometimes a later edit), each valid from its
``modified`` on. At business-clock time T a stock-in is its latest state with ``modified <= T``; before
its creation it does not exist. So a stock-in completing in the clock's future is, until then, at 20/30
(hidden by the default status) and nothing is ever ``modified`` later than T. Stock-ins take no part in
churn or renumbering; the clock is the stock-outs' (``server.emulator``), ``set_now`` moves both.

Request (spec §3, §7.1)
- Window on ``modified``, both ends inclusive, ``yyyy-MM-dd HH:mm:ss`` Asia/Shanghai, the same parameter
  checks and codes as the stock-out API (:mod:`.query`): only one end, a malformed datetime or start >
  end answer 100 ``isv.invalid-parameter:<name>``; a span over ``max_span`` (30 days, CLI
  ``--max-span-minutes``) 100 ``isv.time-span-too-long``.
- ``status``: default 80 已完成 (spec §3.1 "默认查询80已完成单据", read literally: the default holds for
  document-number look-ups too, so a look-up of a stock-in at another status needs that status). One
  value, or (lenient, [UNCONFIRMED] server-side) a comma list such as ``60,80``; every value must be one
  of the API's: refund 10, 20, 30, 60, 80; purchase 10, 20, 25, 30, 60, 80 (the generic stock-in API's
  32/33/35 are not the purchase list). Anything else answers 100 ``isv.invalid-parameter:status``.
- Exact filters: ``src_order_no`` and ``stockin_no`` (both APIs), ``shop_no`` (refund),
  ``warehouse_no`` and ``stockin_outer_no`` (= ``outer_no``; purchase). A filter of the other API (e.g.
  ``warehouse_no`` on the refund API, only evidenced for the Y edition) is ignored like any unknown
  parameter. Empty values count as absent.
- ``src_order_no``, ``stockin_no`` and (purchase) ``stockin_outer_no`` may replace the window; with a
  window they narrow it. Neither a window nor one of them answers 2900 "时间范围与入库单号不能全部为空"
  (the Y edition's text, spec §3.4, for both APIs).
- ``page_no`` from 0, ``page_size`` 1..100 (default 40), as the stock-out API: outside answers 100,
  nothing is clamped. The older pages' 50 (refund) and 30 (purchase) are not enforced: production
  clients send 100 and 50 (spec §10.2). Order: ``modified``, then ``stockin_id`` (numerically); offset
  paging, so a stock-in changing while a client pages moves between pages.

Answer (spec §4)
- Body ``total_count`` (stock-ins, on page 0 only, or every page with ``total_count_every_page``) and
  ``stockin_list`` (``[]`` when empty), in the stock-out API's envelopes.
- Refund stock-ins of 淘系 shops (``platform_id`` 1): never on the openapi2 endpoint ("本接口不返回淘系
  及系统供销平台订单数据", left out of the query, so ``total_count`` counts only what is returned); via
  Qimen with ``customer_name`` and ``nick_name`` absent (``privacy="absent"``, default) or masked
  (``"masked"``), the stock-out API's switch and field list. Purchases have no privacy aspect.
- ``status`` type (spec §4.5, switch ``stockin_status_type``, CLI ``--stockin-status-type``): ``mixed``
  (default: refund a number, purchase a numeric string, as observed), ``int`` or ``str`` for both.
  ``batch_fields`` does not apply here (the purchase lines' ``production_date``/``expire_date`` are fields
  of the typed 企业版 model; refund lines carry no batch fields).
- ``/openapi2/his_stockin_order_query_refund.php`` (archived refund stock-ins, no Qimen method): the same
  checks and validation, and an empty answer (``total_count`` 0): the emulator's data are all recent, and
  WDT archives only old documents.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.stockins import PURCHASE, PURCHASE_STATUSES, REFUND, REFUND_STATUSES, StockinData
from emulators.wdt.query import (
    MAX_SPAN,
    BusinessError,
    invalid_parameter,
    parse_paging,
    parse_window,
)
from emulators.wdt.timeline import Clock, parse_clock, to_local

METHOD_REFUND = "wdt.stockin.order.query.refund"
METHOD_PURCHASE = "wdt.stockin.order.query.purchase"
DEFAULT_STATUS = 80
STATUSES = {REFUND: REFUND_STATUSES, PURCHASE: PURCHASE_STATUSES}
STATUS_TYPES = ("mixed", "int", "str")
# Number filters per API; each may replace the window.
_NUMBERS = {REFUND: ("src_order_no", "stockin_no"), PURCHASE: ("src_order_no", "stockin_no", "stockin_outer_no")}
_FILTERS = {REFUND: ("shop_no",), PURCHASE: ("warehouse_no",)}
# request parameter -> the stock-in field it matches
_FIELD = {"stockin_outer_no": "outer_no"}

# (stock-in, its modified) -> selected
Predicate = Callable[[dict[str, Any], dt.datetime], bool]


@dataclass(frozen=True)
class StockinQuery:
    """The validated business parameters of one stock-in query."""

    kind: str
    statuses: frozenset[int]
    exact: tuple[tuple[str, str], ...]  # (field, value) that must match
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    page_no: int = 0
    page_size: int = 40

    def matches(self, stockin: dict[str, Any], modified: dt.datetime) -> bool:
        if self.start is not None and self.end is not None and not self.start <= modified <= self.end:
            return False
        if int(stockin["status"]) not in self.statuses:
            return False
        return all(stockin[key] == value for key, value in self.exact)


def parse_statuses(kind: str, raw: str) -> frozenset[int]:
    """`status`: empty -> {80}; one known value or a comma list of them; BusinessError 100 otherwise."""
    if raw == "":
        return frozenset({DEFAULT_STATUS})
    allowed = STATUSES[kind]
    values = set()
    for part in raw.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or int(part) not in allowed:
            names = ",".join(map(str, allowed))
            raise invalid_parameter("status", f"status取值无效, 只能是{names}之一或其逗号分隔列表: {raw}")
        values.add(int(part))
    return frozenset(values)


def parse_stockin_query(kind: str, params: Mapping[str, str], max_span: dt.timedelta = MAX_SPAN) -> StockinQuery:
    """Validate the business parameters of the `kind` (REFUND / PURCHASE) API; raises BusinessError."""
    page_no, page_size = parse_paging(params)
    statuses = parse_statuses(kind, params.get("status", ""))
    start, end = parse_window(params, max_span)
    numbers = [(name, params.get(name, "")) for name in _NUMBERS[kind]]
    if start is None and not any(value for _, value in numbers):
        raise BusinessError(2900, "时间范围与入库单号不能全部为空", "isv.missing-parameter:start_time")
    filters = numbers + [(name, params.get(name, "")) for name in _FILTERS[kind]]
    return StockinQuery(
        kind=kind,
        statuses=statuses,
        exact=tuple((_FIELD.get(name, name), value) for name, value in filters if value),
        start=start,
        end=end,
        page_no=page_no,
        page_size=page_size,
    )


class _History:
    """One stock-in's states; `times` are their `modified`, for bisecting."""

    def __init__(self, states: tuple[dict[str, Any], ...]) -> None:
        self.states = states
        self.times = [parse_clock(s["modified"]) or dt.datetime.min for s in states]
        self.stockin_id = int(states[0]["stockin_id"])

    def at(self, when: dt.datetime) -> tuple[dt.datetime, dict[str, Any]] | None:
        i = bisect.bisect_right(self.times, when)
        return (self.times[i - 1], self.states[i - 1]) if i else None


class StockinStore:
    """Refund and purchase stock-ins as they are at the business clock's time (shared with the stock-outs).
    Nothing here changes after construction, so reads need no lock."""

    def __init__(self, data: StockinData, clock: Clock) -> None:
        self.data = data
        self.clock = clock
        self._histories = {
            kind: [_History(data.history[row["stockin_id"]]) for row in data.kind(kind)] for kind in (REFUND, PURCHASE)
        }

    def now(self) -> dt.datetime:
        return self.clock.now()

    def _states(self, kind: str, local: dt.datetime) -> list[tuple[dt.datetime, int, dict[str, Any]]]:
        found = ((h.stockin_id, h.at(local)) for h in self._histories[kind])
        states = [(state[0], stockin_id, state[1]) for stockin_id, state in found if state is not None]
        states.sort(key=lambda s: (s[0], s[1]))
        return states

    def visible(self, kind: str, when: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every stock-in of `kind` that exists at `when` (aware; default the clock), as it is then, in API
        order; the records as stored (the gateway's switches not applied)."""
        return [state for _, _, state in self._states(kind, to_local(when or self.now()))]

    def refunds(self, when: dt.datetime | None = None) -> list[dict[str, Any]]:
        return self.visible(REFUND, when)

    def purchases(self, when: dt.datetime | None = None) -> list[dict[str, Any]]:
        return self.visible(PURCHASE, when)

    def read(self, kind: str, matches: Predicate) -> list[dict[str, Any]]:
        """The stock-ins of `kind` matching now, in API order."""
        return [state for modified, _, state in self._states(kind, to_local(self.now())) if matches(state, modified)]
