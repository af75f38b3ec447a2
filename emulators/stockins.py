"""WDT stock-ins derived from the data set: refund stock-ins (退货入库单) and purchase stock-ins (采购入库单).

``build_stockins(dataset)`` gives a :class:`StockinData`: ``refunds`` and ``purchases``, each stock-in
exactly as ``wdt.stockin.order.query.refund`` / ``wdt.stockin.order.query.purchase`` return it (with the
emulator's default switches) in its final state, in API order (``modified``, then ``stockin_id``); and
``history``: every state of every stock-in, oldest first (the last one is the final state), which the WDT
emulator replays against its clock. Same data set, same bytes: everything is drawn from
``random.Random("stockins-<seed>-<orders>-<first day>-<last day>")``, where the days are the first and last
planned day of the stock-outs (the date in their ``order_no``); with no stock-outs there are no stock-ins.
``build_stockin_data(seed, orders, start, days)`` is the shortcut from ``build_dataset``'s arguments.

Follows /work/shared/protocols/wdt-qimen-stockin.md. The stock-out data set is not changed (the
stock-outs keep their ``refund_status``). Decisions on the points the spec marks [INF]/[UNCONFIRMED]:

Refunds (spec §2, §4)
- Only clean completed sales come back: stock-outs at status 110 that are not in ``Dataset.defects``
  (cancelled, shipped-not-completed and deliberately defective orders never do, so every return names a
  sale the sales flow can load). ``REFUND_SHARE`` (12 %) of them, at least one when there is any, are
  returned through one 退换单 each.
- A refund covers one platform order: for a merged stock-out one of its ``src_tids`` is drawn and only its
  lines come back. 40 % return the whole platform order (every line, gifts included, at full quantity);
  the others return some of its paid (non-gift) lines, each at 1..shipped units. Over all stock-ins of
  all statuses, the quantity per original line (``tid`` + ``oid``) never exceeds what was shipped.
- 15 % of the refunds with at least two units arrive in two stock-ins (partial arrivals): several lines
  are cut between them, a single line's quantity is split; when no refund was split by the draw the
  first that can be is split, so a data set with such a refund always has one. Both reach 80.
- Times: the refund is created 2-72 h after the stock-out's (data-set) ``modified``, which is never before
  its completion; the stock-in is created 12-72 h after the refund, submitted (30) 1-30 min later and
  completed (80) 5 min-6 h after that; a second stock-in is created 6-48 h after the first completed.
  So every refund stock-in is modified after its stock-out, and late in the data set's days returns may
  lie in the business clock's future (invisible until then).
- States (spec §9.3): 20 编辑中 at ``created_time`` -> 30 待审核 -> 80 已完成 (``stockin_time`` =
  ``check_time`` = that moment; zero datetimes before). Some single-stock-in refunds stop elsewhere,
  cycling 30, 10 (cancelled 10 min-24 h after submission), 20 (never submitted), 60 待结算 (goods in,
  ``stockin_time``/``check_time`` set, settlement pending): one when there are two or more (so such a
  data set always has a stock-in the default status filter hides), a third of them up to one per status,
  or ``NON_DONE_SHARE`` (10 %) if that is more.
  ``EDIT_SHARE`` (5 %, at least one when there are three or more) of the completed stock-ins are edited
  later (``remark`` set, ``modified`` bumped 1-48 h after completion): they re-surface in a later window.
- ``process_status`` is the refund's status as of the stock-in's own last change (a snapshot, it does not
  move when a sibling stock-in changes): 60 待收货 while 10/20/30, 80 待结算 at 60, 90 已完成 at 80, 70
  部分到货 on the first of two stock-ins.
- Numbers: ``refund_no`` == ``src_order_no`` = "TK" + refund created yyyymmdd + 4-digit sequence of that
  day; ``order_no`` == ``stockin_no`` = "RK" + stock-in created yyyymmdd + 4-digit sequence of the day
  (spec §4.4's shapes). ``trade_no`` is the stock-out's ``src_order_no``; ``tid`` the returned platform
  order; lines carry ``tid``/``oid`` = the stock-out line's ``src_tid``/``src_oid`` and its ``spec_no``.
- Money: ``src_price`` = ``right_price`` = ``stockin_price`` = ``tax_price`` = the original line's
  ``sell_price``; a line's ``actual_refund_amount`` is its share of the sale's paid amount (the line's
  ``share_amount`` * returned / shipped, to the cent; the whole ``share_amount`` when the line comes back
  whole), ``discount`` = ``src_price`` * ``num`` - ``actual_refund_amount``; ``cost_price`` the line's cost,
  ``total_cost`` = ``right_cost`` = cost * num; taxes zero, as on the sales. Every line is 正品
  (``stock_type`` 1): ``goods_count`` = ``num`` = ``right_num``, ``adjust_num`` 0. Head sums of the lines:
  ``goods_count``, ``goods_amount`` (= ``right_price``, Σ src_price*num), ``discount``,
  ``actual_refund_amount``; ``total_price`` = goods_amount - discount (the postage is not refunded:
  ``post_fee``/``other_fee`` 0); ``goods_type_count`` is the number of lines, a decimal string like the
  other counts (spec §4.2).
- Head copies from the stock-out: ``shop_*``, ``platform_id``, ``warehouse_no``/``warehouse_name`` (the
  goods go back where they left), ``customer_no``, ``customer_name`` (the receiver, 退货人) and
  ``nick_name`` (masked on 淘系 as in the data set; the gateway's privacy switch applies to them),
  ``trade_type`` as a string (the typed 企业版 model's type). The buyer's parcel: a carrier and
  ``logistics_no`` per stock-in. ``order_type`` = ``src_order_type`` 3 "退货入库".
- Fields left out as unevidenced for 企业版: ``spec_code`` (only a qeasy mapping), batch/expiry fields,
  ``trans_from_wt``, ``defect``, ``warehouse_id`` (Y edition only).

Purchases (spec §7)
- For each day from the data set's first to its last planned day, 1-3 purchase orders (``purchase_no``
  "CG" + the order's created yyyymmdd + 4-digit sequence in creation order; created 1-5 days before at
  09:00-17:59), each from one catalog supplier for 1-4 of
  the SKUs of its brands (never UNKNOWN_SKU, whose brand no supplier sells), 20-200 units a line, into
  one warehouse; its stock-in is created that day 08:00-17:59. 20 % arrive in two stock-ins (about half
  first, the rest 1-3 days later, which may lie after the data set's last day). Stock-in numbers
  ``order_no`` == ``stockin_no`` = "CR" + created yyyymmdd + 4-digit sequence; ``outer_no`` = the
  supplier's delivery note "DN" + the same date and sequence (the ``stockin_outer_no`` filter);
  ``src_order_no`` == ``purchase_no``.
- States: as refunds (20 -> 30 -> 80), completion 10 min-4 h after submission; single-stock-in
  purchases stop at 30, 20, 60, 10 and 25 待价格确认 (20 -> 25, stuck) in that cycle, counted as for
  refunds (share ``PURCHASE_NON_DONE_SHARE`` 12 %); 5 % of completed ones are edited later. ``status`` is a numeric **string** ("80",
  spec §4.5 / R16); refund ``status`` a number.
- Money (tax-inclusive prices, 13 % VAT): ``right_price`` = ``src_price`` = ``tax_price`` = ``cost_price``
  = the purchase price, the SKU's cost as in the stock-outs (price * 0.55, to the cent); ``total_cost`` =
  ``right_cost`` = right_num * price; ``tax`` = "0.1300" (a rate, spec §7.2); ``tax_amount`` =
  total_cost * 13/113 to the cent. ``expect_num`` is what the purchase order still expected;
  ``goods_count`` = ``num`` = ``right_num`` the units received. Head: ``goods_count`` = ``right_nums`` (Σ),
  ``goods_amount`` = ``total_price`` = ``right_price`` (Σ total_cost), ``tax_amount`` (Σ),
  ``goods_type_count`` (lines, decimal string), fees/discount zero.
- Lines of batch-managed goods carry ``production_date`` (10-90 days before the stock-in) and
  ``expire_date``/``validity_days`` (the shelf life: tea 540 days, cosmetics 1095, others 730); others
  zero datetimes and 0 (fields of the typed 企业版 model, so present).
- ``order_type`` = ``src_order_type`` 1 "采购入库".

Common: ids are strings: ``stockin_id`` from 600001 and line ``rec_id`` from 1600001, one sequence for
both kinds (one stock-in table), in creation order; ``refund_id`` from 400001; refund lines'
``src_order_detail_id`` (the 退换单's line) from 1000001, one per refund and original line (the two
stock-ins of a split line name the same). ``spec_id``/``brand_no``
are the data set's (catalog position, "PP" + brand position). Money and quantities are 4-decimal
strings, datetimes ``yyyy-MM-dd HH:mm:ss`` Asia/Shanghai, unset ones "0000-00-00 00:00:00". Every state
sets the head's and the lines' ``modified``.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from emulators.dataset import ZERO_DATETIME, Dataset, Sku, build_dataset

REFUND = "refund"
PURCHASE = "purchase"
DONE = 80
REFUND_STATUSES = (10, 20, 30, 60, 80)
PURCHASE_STATUSES = (10, 20, 25, 30, 60, 80)
REFUND_SHARE = 0.12
WHOLE_SHARE = 0.4
SPLIT_SHARE = 0.15
PURCHASE_SPLIT_SHARE = 0.2
NON_DONE_SHARE = 0.10
PURCHASE_NON_DONE_SHARE = 0.12
EDIT_SHARE = 0.05
FIRST_STOCKIN_ID = 600001
FIRST_REC_ID = 1600001
FIRST_REFUND_ID = 400001
FIRST_REFUND_DETAIL_ID = 1000001
VAT = Decimal("0.13")

_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_REFUND_NON_DONE = (30, 10, 20, 60)
_PURCHASE_NON_DONE = (30, 20, 60, 10, 25)
# refund process_status per stock-in status (§2): 待收货 until the goods are in, then 待结算 / 已完成
_PROCESS = {10: 60, 20: 60, 30: 60, 60: 80, 80: 90}
_PARTIAL_ARRIVAL = 70
_SHELF_LIFE_DAYS = {"GT": 540, "CP": 1095}
# code, name, logistics_type (our own numbering, as in the data set)
_CARRIERS = (("SF", "顺丰速运", 3), ("ZTO", "中通快递", 7), ("YTO", "圆通速递", 6), ("YUNDA", "韵达快递", 8))
_STAFF = ("王芳", "李强", "张敏", "刘洋", "陈静", "赵磊")
_REFUND_REMARKS = ("尺码不合适", "七天无理由退货", "商品质量问题", "发错货", "不想要了", "与描述不符")
_REFUND_EDIT = "补录退货物流信息"
_PURCHASE_EDIT = "补录供应商发票号"


@dataclass(frozen=True)
class StockinData:
    """The stock-ins of one data set (see the module docstring)."""

    # final states, as the APIs return them, in API order (modified, stockin_id)
    refunds: list[dict[str, Any]]
    purchases: list[dict[str, Any]]
    # stockin_id -> every state, oldest first; the last is the final one
    history: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        """``refunds`` for REFUND, ``purchases`` for PURCHASE."""
        return self.refunds if kind == REFUND else self.purchases


@dataclass
class _Line:
    spec: dict[str, Any]  # spec_no, spec_id, spec_name, goods_no, goods_name, barcode, brand_no, brand_name
    num: int
    price: Decimal
    cost: Decimal
    amount: Decimal  # refund: actual refund of the line; purchase: unused
    extra: dict[str, Any]  # kind-specific line fields, fixed at planning time


@dataclass
class _Plan:
    """One stock-in before its ids and numbers are given."""

    kind: str
    ordinal: int
    created: _dt.datetime
    lines: list[_Line]
    head: dict[str, Any]  # kind-specific head fields
    status: int = DONE
    submitted: _dt.datetime | None = None
    finished: _dt.datetime | None = None  # the moment of the final status
    edited: _dt.datetime | None = None
    group: list[_Plan] = field(default_factory=list)  # the stock-ins of the same refund / purchase order


def build_stockin_data(seed: int, orders: int, start: _dt.date, days: int) -> StockinData:
    """The stock-ins of ``build_dataset(seed, orders, start, days)`` (what the emulator serves)."""
    return build_stockins(build_dataset(seed, orders, start, days))


def build_stockins(dataset: Dataset) -> StockinData:
    """The refund and purchase stock-ins of `dataset` (deterministic, see the module docstring)."""
    # the planned day of a stock-out is the date in its number (CK + yyyymmdd + sequence)
    planned = {_dt.datetime.strptime(o["order_no"][2:10], "%Y%m%d").date() for o in dataset.orders}
    if not planned:
        return StockinData([], [], {})
    first, last = min(planned), max(planned)
    days = [first + _dt.timedelta(days=i) for i in range((last - first).days + 1)]
    rng = random.Random(f"stockins-{dataset.catalog.seed}-{len(dataset.orders)}-{first}-{last}")
    refunds = _plan_refunds(rng, dataset)
    purchases = _plan_purchases(rng, dataset, _Ids(dataset), days)
    _pick_states(rng, refunds, _REFUND_NON_DONE, NON_DONE_SHARE)
    _pick_states(rng, purchases, _PURCHASE_NON_DONE, PURCHASE_NON_DONE_SHARE)
    _number_refunds(refunds)
    _number_purchases(purchases)
    history = _render(refunds + purchases)
    finals: dict[str, list[dict[str, Any]]] = {REFUND: [], PURCHASE: []}
    for plan in refunds + purchases:
        finals[plan.kind].append(history[plan.head["stockin_id"]][-1])
    for rows in finals.values():
        rows.sort(key=_api_order)
    return StockinData(finals[REFUND], finals[PURCHASE], history)


def _api_order(row: dict[str, Any]) -> tuple[str, int]:
    return row["modified"], int(row["stockin_id"])


def _fmt(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


def _fmt_dt(value: _dt.datetime | None) -> str:
    return value.strftime(_DATETIME_FORMAT) if value else ZERO_DATETIME


def _seconds(rng: random.Random, low: int, high: int) -> _dt.timedelta:
    return _dt.timedelta(seconds=rng.randint(low, high))


class _Ids:
    """The data set's own numbering of SKUs and brands (catalog positions), for lines of new goods."""

    def __init__(self, dataset: Dataset) -> None:
        skus = dataset.catalog.skus
        self.spec_ids = {s.spec_no: i + 1 for i, s in enumerate(skus)}
        brands = list(dict.fromkeys(s.brand_name for s in skus))
        self.brand_nos = {b: f"PP{i + 1:03d}" for i, b in enumerate(brands)}

    def spec(self, sku: Sku) -> dict[str, Any]:
        return {
            "spec_no": sku.spec_no,
            "spec_id": str(self.spec_ids[sku.spec_no]),
            "spec_name": sku.spec_name,
            "goods_no": sku.goods_no,
            "goods_name": sku.goods_name,
            "barcode": sku.barcode,
            "brand_no": self.brand_nos[sku.brand_name],
            "brand_name": sku.brand_name,
        }


# -- refunds -------------------------------------------------------------------------------------------
def _plan_refunds(rng: random.Random, dataset: Dataset) -> list[_Plan]:
    eligible = sorted(
        (o for o in dataset.orders if o["status"] == 110 and o["order_no"] not in dataset.defects),
        key=lambda o: o["stockout_id"],
    )
    if not eligible:
        return []
    count = max(1, round(len(eligible) * REFUND_SHARE))
    chosen = sorted(rng.sample(eligible, count), key=lambda o: o["stockout_id"])
    returns = [(order, _returned_lines(rng, order)) for order in chosen]
    split = [sum(n for _, n in lines) >= 2 and rng.random() < SPLIT_SHARE for _, lines in returns]
    if not any(split):
        splittable = [i for i, (_, lines) in enumerate(returns) if sum(n for _, n in lines) >= 2]
        if splittable:
            split[splittable[0]] = True
    plans: list[_Plan] = []
    for (order, lines), cut in zip(returns, split, strict=True):
        plans.extend(_refund_stockins(rng, order, lines, cut, len(plans)))
    return plans


def _returned_lines(rng: random.Random, order: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """(stock-out line, units returned) of one platform order of `order`."""
    tid = rng.choice(order["src_tids"].split(","))
    lines = [line for line in order["details_list"] if line["src_tid"] == tid and Decimal(line["goods_count"]) > 0]
    paid = [line for line in lines if line["gift_type"] == 0]
    if rng.random() < WHOLE_SHARE or not paid:
        return [(line, int(Decimal(line["goods_count"]))) for line in lines]
    picked = {id(line) for line in rng.sample(paid, rng.randint(1, len(paid)))}
    return [(line, rng.randint(1, int(Decimal(line["goods_count"])))) for line in paid if id(line) in picked]


def _refund_stockins(
    rng: random.Random,
    order: dict[str, Any],
    returned: list[tuple[dict[str, Any], int]],
    split: bool,
    ordinal: int,
) -> list[_Plan]:
    if not split:
        parts = [returned]
    elif len(returned) > 1:
        cut = rng.randint(1, len(returned) - 1)
        parts = [returned[:cut], returned[cut:]]
    else:
        line, units = returned[0]
        first = rng.randint(1, units - 1)
        parts = [[(line, first)], [(line, units - first)]]
    completed = _dt.datetime.strptime(order["modified"], _DATETIME_FORMAT)
    refund_created = completed + _seconds(rng, 2 * 3600, 72 * 3600)
    refund = {
        "refund_created": refund_created,
        "trade_no": order["src_order_no"],
        "trade_type": str(order["trade_type"]),
        "tid": returned[0][0]["src_tid"],
        "shop_no": order["shop_no"],
        "shop_name": order["shop_name"],
        "shop_remark": order["shop_remark"],
        "platform_id": order["platform_id"],
        "warehouse_no": order["warehouse_no"],
        "warehouse_name": order["warehouse_name"],
        "customer_no": order["customer_no"],
        "customer_name": order["receiver_name"],
        "nick_name": order["nick_name"],
        "refund_remark": rng.choice(_REFUND_REMARKS),
        "refund_operator_name": rng.choice(_STAFF),
    }
    plans: list[_Plan] = []
    created = refund_created + _seconds(rng, 12 * 3600, 72 * 3600)
    for part in parts:
        carrier = rng.choice(_CARRIERS)
        head = {
            **refund,
            "logistics_type": carrier[2],
            "logistics_code": carrier[0],
            "logistics_name": carrier[1],
            "logistics_no": f"{carrier[0]}{rng.randint(10**11, 10**12 - 1)}",
            "stockin_operator_name": rng.choice(_STAFF),
            "check_operator_name": rng.choice(_STAFF),
            "creator_name": rng.choice(_STAFF),
        }
        lines = [_refund_line(line, units) for line, units in part]
        plan = _Plan(REFUND, ordinal + len(plans), created, lines, head)
        _timeline(rng, plan, 300, 6 * 3600)
        plans.append(plan)
        assert plan.finished is not None
        created = plan.finished + _seconds(rng, 6 * 3600, 48 * 3600)
    for plan in plans:
        plan.group = plans
    return plans


def _refund_line(line: dict[str, Any], units: int) -> _Line:
    shipped = int(Decimal(line["goods_count"]))
    share = Decimal(line["share_amount"])
    amount = share if units == shipped else (share * units / shipped).quantize(_CENT)
    spec = {k: str(line[k]) for k in ("spec_no", "spec_id", "spec_name", "goods_no", "goods_name", "barcode")}
    spec |= {k: line[k] for k in ("brand_no", "brand_name")}
    extra = {"tid": line["src_tid"], "oid": line["src_oid"], "platform_id": line["platform_id"]}
    return _Line(spec, units, Decimal(line["sell_price"]), Decimal(line["cost_price"]), amount, extra)


def _timeline(rng: random.Random, plan: _Plan, low: int, high: int) -> None:
    """Submission and completion times of a stock-in that reaches 80 (the final status may change later)."""
    plan.submitted = plan.created + _seconds(rng, 60, 1800)
    plan.finished = plan.submitted + _seconds(rng, low, high)


def _groups(plans: list[_Plan], at: str) -> list[list[_Plan]]:
    """The refunds / purchase orders of `plans`, in the order of their head's `at` time."""
    firsts = {id(p.group[0]): p.group[0] for p in plans}.values()
    return [p.group for p in sorted(firsts, key=lambda p: (p.head[at], p.ordinal))]


def _number_refunds(plans: list[_Plan]) -> None:
    """refund_no (TK + refund day + sequence), refund_id and the refund's line ids (one per original
    line, shared by the stock-ins that split it), in the refunds' creation order."""
    sequences: dict[_dt.date, int] = {}
    detail_id = FIRST_REFUND_DETAIL_ID
    for i, group in enumerate(_groups(plans, "refund_created")):
        day = group[0].head["refund_created"].date()
        sequences[day] = sequences.get(day, 0) + 1
        number = f"TK{day:%Y%m%d}{sequences[day]:04d}"
        detail_ids: dict[str, str] = {}
        for plan in group:
            plan.head["refund_no"] = number
            plan.head["refund_id"] = str(FIRST_REFUND_ID + i)
            for line in plan.lines:
                if line.extra["oid"] not in detail_ids:
                    detail_ids[line.extra["oid"]] = str(detail_id)
                    detail_id += 1
                line.extra["src_order_detail_id"] = detail_ids[line.extra["oid"]]


def _number_purchases(plans: list[_Plan]) -> None:
    """purchase_no: CG + the order's day + sequence, in the purchase orders' creation order."""
    sequences: dict[_dt.date, int] = {}
    for group in _groups(plans, "ordered_at"):
        day = group[0].head["ordered_at"].date()
        sequences[day] = sequences.get(day, 0) + 1
        for plan in group:
            plan.head["purchase_no"] = f"CG{day:%Y%m%d}{sequences[day]:04d}"


# -- purchases -----------------------------------------------------------------------------------------
def _plan_purchases(rng: random.Random, dataset: Dataset, ids: _Ids, days: list[_dt.date]) -> list[_Plan]:
    catalog = dataset.catalog
    by_supplier = [
        (supplier, [s for s in catalog.skus if s.brand_name in supplier.brands and s.known_to_kingdee])
        for supplier in catalog.suppliers
    ]
    by_supplier = [(supplier, skus) for supplier, skus in by_supplier if skus]
    if not by_supplier or not catalog.warehouses:
        return []
    plans: list[_Plan] = []
    for day in days:
        for _ in range(rng.randint(1, 3)):
            supplier, skus = rng.choice(by_supplier)
            warehouse = rng.choice(catalog.warehouses)
            ordered_at = _dt.datetime.combine(day - _dt.timedelta(days=rng.randint(1, 5)), _dt.time(9)) + _seconds(
                rng, 0, 9 * 3600 - 1
            )
            goods = rng.sample(skus, rng.randint(1, min(4, len(skus))))
            ordered = [rng.choice((20, 30, 50, 60, 100, 120, 200)) for _ in goods]
            parts = [ordered]
            if rng.random() < PURCHASE_SPLIT_SHARE:
                first = [max(1, n * rng.randint(40, 60) // 100) for n in ordered]
                parts = [first, [n - f for n, f in zip(ordered, first, strict=True)]]
            head = {
                "ordered_at": ordered_at,
                "provider_no": supplier.provider_no,
                "provider_name": supplier.provider_name,
                "warehouse_id": str(warehouse.warehouse_id),
                "warehouse_no": warehouse.warehouse_no,
                "warehouse_name": warehouse.warehouse_name,
                "operator_name": rng.choice(_STAFF),
            }
            created = _dt.datetime.combine(day, _dt.time(8)) + _seconds(rng, 0, 10 * 3600 - 1)
            group: list[_Plan] = []
            expected = list(ordered)
            for part in parts:
                lines = []
                for sku, units, expect in zip(goods, part, expected, strict=True):
                    if units:
                        lines.append(_purchase_line(rng, ids, sku, units, expect, created))
                plan = _Plan(
                    PURCHASE,
                    len(plans),
                    created,
                    lines,
                    {**head, "check_operator_name": rng.choice(_STAFF)},
                )
                _timeline(rng, plan, 600, 4 * 3600)
                group.append(plan)
                plans.append(plan)
                expected = [e - u for e, u in zip(expected, part, strict=True)]
                assert plan.finished is not None
                created = plan.finished + _seconds(rng, 86400, 3 * 86400)
            for plan in group:
                plan.group = group
    return plans


def _purchase_line(rng: random.Random, ids: _Ids, sku: Sku, units: int, expect: int, at: _dt.datetime) -> _Line:
    price = (sku.price * Decimal("0.55")).quantize(_CENT)  # the data set's cost of the SKU
    if sku.batch_managed:
        produced = at.date() - _dt.timedelta(days=rng.randint(10, 90))
        shelf = _SHELF_LIFE_DAYS.get(sku.goods_no[:2], 730)
        batch = {
            "production_date": f"{produced:%Y-%m-%d} 00:00:00",
            "expire_date": f"{produced + _dt.timedelta(days=shelf):%Y-%m-%d} 00:00:00",
            "validity_days": shelf,
        }
    else:
        batch = {"production_date": ZERO_DATETIME, "expire_date": ZERO_DATETIME, "validity_days": 0}
    return _Line(ids.spec(sku), units, price, price, _ZERO, {"expect_num": _fmt(Decimal(expect)), **batch})


# -- states --------------------------------------------------------------------------------------------
def _pick_states(rng: random.Random, plans: list[_Plan], cycle: tuple[int, ...], share: float) -> None:
    """Final statuses other than 80 (single-stock-in groups only) and later edits of completed ones."""
    singles = [p for p in plans if len(p.group) == 1]
    # at least one (of two or more), a third of them up to one of each status of the cycle, or the share
    count = max(min(1, len(singles) - 1), min(len(cycle), len(singles) // 3), round(len(singles) * share))
    if count > 0:
        for i, plan in enumerate(sorted(rng.sample(singles, count), key=lambda p: p.ordinal)):
            plan.status = cycle[i % len(cycle)]
            assert plan.submitted is not None
            if plan.status == 20:  # never submitted
                plan.submitted, plan.finished = None, plan.created
            elif plan.status in (25, 30):  # stuck where it was submitted to
                plan.finished = plan.submitted
            elif plan.status == 10:
                plan.finished = plan.submitted + _seconds(rng, 600, 86400)
            # 60: goods in at the planned completion, settlement pending
    done = [p for p in plans if p.status == DONE]
    if len(done) >= 3:
        for plan in rng.sample(done, max(1, round(len(done) * EDIT_SHARE))):
            assert plan.finished is not None
            plan.edited = plan.finished + _seconds(rng, 3600, 48 * 3600)


def _steps(plan: _Plan) -> Iterator[tuple[_dt.datetime, int, bool]]:
    """(moment, status, edited) of each state of a stock-in."""
    yield plan.created, 20, False
    if plan.submitted is not None and plan.finished is not None:
        if plan.status == 25:
            yield plan.finished, 25, False
            return
        yield plan.submitted, 30, False
        if plan.status in (10, 60, DONE):
            yield plan.finished, plan.status, False
    if plan.edited is not None:
        yield plan.edited, plan.status, True


# -- rendering -----------------------------------------------------------------------------------------
def _render(plans: list[_Plan]) -> dict[str, tuple[dict[str, Any], ...]]:
    """Ids and stock-in numbers in creation order, then every state of every stock-in."""
    ordered = sorted(plans, key=lambda p: (p.created, p.kind, p.ordinal))
    sequences: dict[tuple[str, _dt.date], int] = {}
    rec_id = FIRST_REC_ID
    history: dict[str, tuple[dict[str, Any], ...]] = {}
    for i, plan in enumerate(ordered):
        stockin_id = str(FIRST_STOCKIN_ID + i)
        prefix = "RK" if plan.kind == REFUND else "CR"
        key = (prefix, plan.created.date())
        sequences[key] = sequences.get(key, 0) + 1
        number = f"{prefix}{plan.created:%Y%m%d}{sequences[key]:04d}"
        plan.head["stockin_id"] = stockin_id
        base = _refund_head(plan, number) if plan.kind == REFUND else _purchase_head(plan, number)
        lines = []
        for line in plan.lines:
            render = _refund_detail if plan.kind == REFUND else _purchase_detail
            lines.append(render(line, str(rec_id), stockin_id, plan))
            rec_id += 1
        base["details_list"] = lines
        history[stockin_id] = tuple(_state(plan, base, at, status, edited) for at, status, edited in _steps(plan))
    return history


def _state(plan: _Plan, base: dict[str, Any], at: _dt.datetime, status: int, edited: bool) -> dict[str, Any]:
    stamp = _fmt_dt(at)
    goods_in = status in (60, DONE)
    assert plan.finished is not None
    arrived = _fmt_dt(plan.finished) if goods_in else ZERO_DATETIME
    state = {
        **base,
        "status": status if plan.kind == REFUND else str(status),
        "stockin_time": arrived,
        "check_time": arrived,
        "modified": stamp,
    }
    if not goods_in:
        state["check_operator_name"] = ""
    if plan.kind == REFUND:
        partial = status == DONE and len(plan.group) > 1 and plan is not plan.group[-1]
        state["process_status"] = _PARTIAL_ARRIVAL if partial else _PROCESS[status]
    if edited:
        state["remark"] = _REFUND_EDIT if plan.kind == REFUND else _PURCHASE_EDIT
    state["details_list"] = [{**line, "modified": stamp} for line in base["details_list"]]
    return state


def _refund_head(plan: _Plan, number: str) -> dict[str, Any]:
    h = plan.head
    amount = sum((line.price * line.num for line in plan.lines), _ZERO)
    refunded = sum((line.amount for line in plan.lines), _ZERO)
    return {
        "stockin_id": h["stockin_id"],
        "order_no": number,
        "stockin_no": number,
        "status": DONE,
        "process_status": 90,
        "src_order_no": h["refund_no"],
        "refund_no": h["refund_no"],
        "refund_id": h["refund_id"],
        "trade_no": h["trade_no"],
        "trade_type": h["trade_type"],
        "tid": h["tid"],
        "order_type": 3,
        "src_order_type": 3,
        "order_type_name": "退货入库",
        "shop_no": h["shop_no"],
        "shop_name": h["shop_name"],
        "shop_remark": h["shop_remark"],
        "platform_id": h["platform_id"],
        "warehouse_no": h["warehouse_no"],
        "warehouse_name": h["warehouse_name"],
        "stockin_time": ZERO_DATETIME,
        "check_time": ZERO_DATETIME,
        "created_time": _fmt_dt(plan.created),
        "modified": _fmt_dt(plan.created),
        "goods_count": _fmt(Decimal(sum(line.num for line in plan.lines))),
        "goods_type_count": _fmt(Decimal(len(plan.lines))),
        "goods_amount": _fmt(amount),
        "total_price": _fmt(refunded),
        "actual_refund_amount": _fmt(refunded),
        "discount": _fmt(amount - refunded),
        "tax_amount": _fmt(_ZERO),
        "post_fee": _fmt(_ZERO),
        "other_fee": _fmt(_ZERO),
        "adjust_num": _fmt(_ZERO),
        "adjust_price": _fmt(_ZERO),
        "right_price": _fmt(amount),
        "logistics_type": h["logistics_type"],
        "logistics_name": h["logistics_name"],
        "logistics_code": h["logistics_code"],
        "logistics_no": h["logistics_no"],
        "customer_no": h["customer_no"],
        "customer_name": h["customer_name"],
        "nick_name": h["nick_name"],
        "check_operator_name": h["check_operator_name"],
        "refund_operator_name": h["refund_operator_name"],
        "stockin_operator_name": h["stockin_operator_name"],
        "refund_remark": h["refund_remark"],
        "stockin_reason": "",
        "remark": "",
        "creator_name": h["creator_name"],
    }


def _refund_detail(line: _Line, rec_id: str, stockin_id: str, plan: _Plan) -> dict[str, Any]:
    num = Decimal(line.num)
    cost = line.cost * num
    return {
        "rec_id": rec_id,
        "stockin_id": stockin_id,
        "src_order_detail_id": line.extra["src_order_detail_id"],
        **line.spec,
        "goods_unit": "件",
        "goods_count": _fmt(num),
        "num": _fmt(num),
        "num2": _fmt(_ZERO),
        "right_num": _fmt(num),
        "right_price": _fmt(line.price),
        "right_cost": _fmt(cost),
        "adjust_num": _fmt(_ZERO),
        "adjust_price": _fmt(_ZERO),
        "src_price": _fmt(line.price),
        "cost_price": _fmt(line.cost),
        "tax_price": _fmt(line.price),
        "tax_amount": _fmt(_ZERO),
        "tax": _fmt(_ZERO),
        "total_cost": _fmt(cost),
        "discount": _fmt(line.price * num - line.amount),
        "stockin_price": _fmt(line.price),
        "actual_refund_amount": _fmt(line.amount),
        "tid": line.extra["tid"],
        "oid": line.extra["oid"],
        "src_order_type": 3,
        "platform_id": line.extra["platform_id"],
        "stock_type": 1,
        "remark": "",
        "modified": _fmt_dt(plan.created),
        "created": _fmt_dt(plan.created),
    }


def _purchase_head(plan: _Plan, number: str) -> dict[str, Any]:
    h = plan.head
    total = sum((line.price * line.num for line in plan.lines), _ZERO)
    tax = sum((_tax(line.price * line.num) for line in plan.lines), _ZERO)
    units = _fmt(Decimal(sum(line.num for line in plan.lines)))
    return {
        "stockin_id": h["stockin_id"],
        "order_no": number,
        "stockin_no": number,
        "status": str(DONE),
        "warehouse_id": h["warehouse_id"],
        "warehouse_no": h["warehouse_no"],
        "warehouse_name": h["warehouse_name"],
        "stockin_time": ZERO_DATETIME,
        "check_time": ZERO_DATETIME,
        "created_time": _fmt_dt(plan.created),
        "modified": _fmt_dt(plan.created),
        "src_order_no": h["purchase_no"],
        "src_order_type": 1,
        "purchase_no": h["purchase_no"],
        "provider_no": h["provider_no"],
        "provider_name": h["provider_name"],
        "outer_no": "DN" + number[2:],
        "remark": "",
        "stockin_reason": "",
        "order_type": 1,
        "order_type_name": "采购入库",
        "goods_count": units,
        "goods_type_count": _fmt(Decimal(len(plan.lines))),
        "goods_amount": _fmt(total),
        "total_price": _fmt(total),
        "discount": _fmt(_ZERO),
        "tax_amount": _fmt(tax),
        "post_fee": _fmt(_ZERO),
        "other_fee": _fmt(_ZERO),
        "right_nums": units,
        "right_price": _fmt(total),
        "adjust_num": _fmt(_ZERO),
        "logistics_type": 0,
        "logistics_code": "",
        "logistics_name": "",
        "logistics_no": "",
        "check_operator_name": h["check_operator_name"],
        "operator_name": h["operator_name"],
    }


def _tax(total: Decimal) -> Decimal:
    """The VAT inside a tax-inclusive total, to the cent."""
    return (total * VAT / (1 + VAT)).quantize(_CENT)


def _purchase_detail(line: _Line, rec_id: str, stockin_id: str, plan: _Plan) -> dict[str, Any]:
    num = Decimal(line.num)
    total = line.price * num
    return {
        "rec_id": rec_id,
        "stockin_id": stockin_id,
        **line.spec,
        "goods_count": _fmt(num),
        "num": _fmt(num),
        "expect_num": line.extra["expect_num"],
        "right_num": _fmt(num),
        "right_price": _fmt(line.price),
        "right_cost": _fmt(total),
        "adjust_num": _fmt(_ZERO),
        "cost_price": _fmt(line.cost),
        "src_price": _fmt(line.price),
        "tax_price": _fmt(line.price),
        "tax_amount": _fmt(_tax(total)),
        "tax": _fmt(VAT),
        "total_cost": _fmt(total),
        "production_date": line.extra["production_date"],
        "expire_date": line.extra["expire_date"],
        "validity_days": line.extra["validity_days"],
        "position_no": "",
        "src_order_type": 1,
        "remark": "",
        "modified": _fmt_dt(plan.created),
        "created": _fmt_dt(plan.created),
    }
