"""Business parameters and query semantics of ``wdt.stockout.order.query.trade`` (spec §4), the same on
the Qimen gateway and the direct openapi2 endpoint.

Decisions on [INF]/[UNCONFIRMED] points:
- Empty parameter values count as absent (several clients send ``src_tid=""`` etc.).
- Invalid parameters answer WDT code 100 (the official table is unavailable): page_size outside 1..100,
  negative or non-integer page_no, a status other than the documented 5, 55, 95, 105, 110, 113 (spec
  §4.2; non-integers and comma lists such as ``95,110`` included: multiple statuses are [UNCONFIRMED],
  so one status per call), is_by_modified not 0/1, malformed datetime, only one end of the window,
  start_time > end_time (sub_code ``isv.invalid-parameter:<name>``, a Chinese message saying which); a
  span longer than ``max_span`` (default exactly 30 days, CLI
  ``--max-span-minutes``) answers 100 ``isv.time-span-too-long``; neither a window nor a document number
  answers 2900 "时间范围与订单编号不能全部为空" (Y doc).
- Window (both ends inclusive): no status -> consign_time, statuses 95 and 110 only (the doc's
  已发货/已完成, read literally: 105 and 113 need an explicit status); status >= 95 -> consign_time and that
  status; status < 95 -> modified and that status; ``is_by_modified=1`` -> modified, with the given status
  or, without one, every status (cancellations included, so that a client can see them). Orders not (yet)
  consigned do not match a consign_time window.
- ``stockout_no``, ``src_order_no`` and ``src_tid`` (matches any of a merged order's ``src_tids`` or a
  line's ``src_tid``) may be given alone; without a window they match whatever the status unless a status
  is given; with a window they narrow it. ``shop_no``/``warehouse_no`` are exact single values. A number
  given up in a renumbering (spec §7.1) no longer matches.
- Order: ascending ``stockout_id`` (= consign order). ``page_no`` from 0 (offset paging: a change while a
  client pages shifts rows between pages), a page past the end is an empty list; ``page_size`` defaults
  to 40.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PAGE_SIZE = 40
MAX_PAGE_SIZE = 100
MAX_SPAN = dt.timedelta(days=30)
# Statuses a window without `status` returns: 已发货 and 已完成 (spec §4.1).
DEFAULT_STATUSES = frozenset({95, 110})
# The statuses a caller may ask for (spec §4.2): 已取消, 已审核, 已发货, 部分打款, 已完成, 异常发货.
STATUSES = (5, 55, 95, 105, 110, 113)
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class BusinessError(Exception):
    """A failure WDT itself answers: through Qimen as `errorcode` == `code`, on openapi2 as the flat `code`."""

    def __init__(self, code: int, message: str, sub_code: str) -> None:
        super().__init__(message)
        self.code, self.message, self.sub_code = code, message, sub_code


def invalid_parameter(name: str, message: str) -> BusinessError:
    return BusinessError(100, message, f"isv.invalid-parameter:{name}")


def parse_datetime(value: str) -> dt.datetime:
    """Strict `yyyy-MM-dd HH:mm:ss` (naive Asia/Shanghai); ValueError otherwise."""
    if not _DATETIME_RE.match(value):
        raise ValueError(value)
    return dt.datetime.strptime(value, DATETIME_FORMAT)


@dataclass(frozen=True)
class StockoutQuery:
    """The validated business parameters of one `wdt.stockout.order.query.trade` call."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: int | None = None
    by_modified: bool = False
    stockout_no: str | None = None
    src_order_no: str | None = None
    src_tid: str | None = None
    shop_no: str | None = None
    warehouse_no: str | None = None
    page_no: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def window_field(self) -> str:
        """Which clock the window filters on (spec §4.1)."""
        if self.by_modified or (self.status is not None and self.status < 95):
            return "modified"
        return "consign_time"

    def matches(
        self,
        order: dict[str, Any],
        consigned: dt.datetime | None,
        modified: dt.datetime,
        tids: frozenset[str],
    ) -> bool:
        """Whether an order (in the state given, with its parsed clocks) is selected, paging aside."""
        if self.start is not None and self.end is not None:
            clock = modified if self.window_field == "modified" else consigned
            if clock is None or not self.start <= clock <= self.end:
                return False
            if self.status is None and not self.by_modified and order["status"] not in DEFAULT_STATUSES:
                return False
        if self.status is not None and order["status"] != self.status:
            return False
        if self.src_tid is not None and self.src_tid not in tids:
            return False
        exact = (
            ("stockout_no", self.stockout_no),
            ("src_order_no", self.src_order_no),
            ("shop_no", self.shop_no),
            ("warehouse_no", self.warehouse_no),
        )
        return all(value is None or order[key] == value for key, value in exact)


def int_param(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid_parameter(name, f"参数{name}必须是整数: {raw}") from None


def parse_paging(params: Mapping[str, str]) -> tuple[int, int]:
    """(page_no, page_size): page_no >= 0 (default 0), page_size 1..100 (default 40); BusinessError 100."""
    page_size = int_param(params, "page_size", DEFAULT_PAGE_SIZE)
    assert page_size is not None
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid_parameter("page_size", f"page_size取值范围为1~{MAX_PAGE_SIZE}: {page_size}")
    page_no = int_param(params, "page_no", 0)
    assert page_no is not None
    if page_no < 0:
        raise invalid_parameter("page_no", f"page_no不能小于0: {page_no}")
    return page_no, page_size


def parse_query(params: Mapping[str, str], max_span: dt.timedelta = MAX_SPAN) -> StockoutQuery:
    """Validate the business parameters; raises BusinessError."""
    page_no, page_size = parse_paging(params)
    by_modified = int_param(params, "is_by_modified", 0)
    if by_modified not in (0, 1):
        raise invalid_parameter("is_by_modified", f"is_by_modified只能是0或1: {by_modified}")
    status = int_param(params, "status", None)
    if status is not None and status not in STATUSES:
        allowed = ",".join(map(str, STATUSES))
        raise invalid_parameter("status", f"status取值无效, 只能是{allowed}之一: {status}")
    start, end = parse_window(params, max_span)
    docs = {k: params.get(k) or None for k in ("stockout_no", "src_order_no", "src_tid")}
    if start is None and not any(docs.values()):
        raise BusinessError(2900, "时间范围与订单编号不能全部为空", "isv.missing-parameter:start_time")
    return StockoutQuery(
        start=start,
        end=end,
        status=status,
        by_modified=by_modified == 1,
        shop_no=params.get("shop_no") or None,
        warehouse_no=params.get("warehouse_no") or None,
        page_no=page_no,
        page_size=page_size,
        **docs,
    )


def _span_text(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 1440}天" if minutes % 1440 == 0 else f"{minutes}分钟"


def parse_window(params: Mapping[str, str], max_span: dt.timedelta) -> tuple[dt.datetime | None, dt.datetime | None]:
    raw = {k: params.get(k, "") for k in ("start_time", "end_time")}
    if not any(raw.values()):
        return None, None
    parsed: dict[str, dt.datetime] = {}
    for name, value in raw.items():
        if value == "":
            raise invalid_parameter(name, f"start_time与end_time必须同时传入, 缺少{name}")
        try:
            parsed[name] = parse_datetime(value)
        except ValueError:
            raise invalid_parameter(name, f"{name}格式错误, 应为yyyy-MM-dd HH:mm:ss: {value}") from None
    start, end = parsed["start_time"], parsed["end_time"]
    if start > end:
        raise invalid_parameter("start_time", "start_time不能大于end_time")
    if end - start > max_span:
        raise BusinessError(100, f"时间跨度不能超过{_span_text(max_span)}", "isv.time-span-too-long")
    return start, end
