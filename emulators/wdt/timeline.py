"""The emulator's clock and each order's history: what the gateway answers is the data *as it was at
the clock time*.

The data set (:mod:`emulators.dataset`) gives every order its final state and its timeline (created,
stock_check_time, consign_time, modified). Here that final state is unfolded into versions, each a full
order as the API returns it, valid from its ``modified`` on. At clock time T an order is its latest
version with ``modified <= T``; before its first version it is invisible; so nothing is ever ``modified``
later than T. Decisions on points the spec leaves open ([INF]/[UNCONFIRMED]):

- Versions of a shipped order (spec §5.3 statuses 55/95/105/110/113):
  1. at ``created``: status 55 已审核 (the stock-out order is born when the sales order is approved and
     handed to the warehouse), ``stock_check_time``/``consign_time`` zero, no waybill (``logistics_no``),
     print batch (``batch_no``) or e-bill yet, ``consign_status`` 0, ``bad_reason`` 0, no refund;
  2. at ``stock_check_time`` (出库审核): still 55, ``stock_check_time`` set, ``consign_status`` 1;
  3. the consignment, *recorded* at the order's consignment-time modification, 0-30 min after the
     ``consign_time`` it carries (the warehouse reports shipping after the fact): status 95 已发货 (113
     异常发货 for those orders), ``consign_status`` 7, waybill, print batch and e-bill set. Between
     ``consign_time`` and that moment the order is still 55 with a zero ``consign_time``: a consign-time
     window ending near T misses it and later gains it - the late insert spec §7.5 warns about. For a
     95/113 order this is its final state (its data-set ``modified`` is that moment); for a 110 order the
     moment is drawn (0-1800 s after ``consign_time``);
  4. 110 orders of the distributor shop (``fenxiao_type`` 2, shop ``FENXIAO…``) pass through 105 部分打款
     (the distributor pays in parts) at a drawn moment between 3 and 5;
  5. completion: status 110 已完成, ``consign_status`` 15, the data set's final order. ``late_rate`` is
     the share of 110 orders that complete at their data-set time (2-48 h after consignment); the others
     complete 1-30 min after the consignment was recorded (their ``modified``/``md5_str`` then differ
     from the data set's). The default 1.0 keeps the data set exactly as it is.
- A cancelled order (5) has versions 1 and 2, then its data-set final state at its ``modified``.
- 驳回 (spec §7.1): WDT rejects only orders not yet shipped, so a renumbered order (share
  ``renumber_rate``, any status) is rejected and re-approved between ``created`` and
  ``stock_check_time``: version 1 carries an *older* ``order_no``/``stockout_no`` (``CK`` + the created
  day + a sequence from 60001, never one of the data set's numbers); from the re-approval on (a version
  of its own, still 55) it carries the data set's numbers, so the final state and the data set's defect
  list stay valid and an old number is never seen at status >= 95. ``stockout_id`` never changes.
- Every ``modified`` change rewrites ``md5_str`` (md5 of ``stockout_id|modified``, as the data set does)
  and the lines' ``modified``; ``trade_status`` follows ``status``.
- Per-order draws come from ``random.Random(f"wdt-timeline-{seed}")``, a fixed number per order in
  ``stockout_id`` order, so changing one rate never moves another decision.

Churn (``churn_rate``): on that share of page reads (coin drawn from ``random.Random(f"wdt-churn-{seed}")``
under the store lock, in call order) one pending event happens *now*, before the page is cut: among the
orders whose next version lies after T and is a consequence of a consignment already made (the recording
of a consignment with ``consign_time <= T``, i.e. a late insert, or a 105/110 step after shipping),
restricted to those that match the query before or after the event (so the change is inside the queried
window), one is drawn and its next version is moved to T (``modified`` = T). The history is rewritten, so
the clock-based ground truth and every later answer include it. Nothing else (creation, approval,
cancellation) is pulled forward. With no such pending event the read is unchanged.

Clock: ``now`` is a callable returning an aware datetime (default: the wall clock). ``set_now(t)``
freezes it at ``t``; ``set_now(t, running=True)`` lets it run on with the wall clock from ``t`` (what
``--now`` does).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from emulators.dataset import ZERO_DATETIME

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
OLD_NUMBER_FIRST_SEQUENCE = 60001

# (order, consign_time, modified, tids) -> bool; built by the query module.
Predicate = Callable[[dict[str, Any], "dt.datetime | None", dt.datetime, frozenset[str]], bool]


def parse_clock(value: str) -> dt.datetime | None:
    """A data-set datetime string as a naive Asia/Shanghai datetime; None for the zero datetime."""
    return None if value == ZERO_DATETIME else dt.datetime.strptime(value, DATETIME_FORMAT)


def fmt(value: dt.datetime) -> str:
    return value.strftime(DATETIME_FORMAT)


def to_local(value: dt.datetime) -> dt.datetime:
    """An aware datetime as naive Asia/Shanghai wall clock (the data's own representation)."""
    if value.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return value.astimezone(SHANGHAI).replace(tzinfo=None)


class Clock:
    """The emulator's notion of now (aware, Asia/Shanghai); thread-safe."""

    def __init__(self, source: Callable[[], dt.datetime]) -> None:
        self._source = source
        self._frozen: dt.datetime | None = None
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return (self._source() + self._offset).astimezone(SHANGHAI)

    def set_now(self, value: dt.datetime, *, running: bool = False) -> None:
        if value.tzinfo is None:
            raise ValueError("set_now needs an aware datetime")
        with self._lock:
            if running:
                self._frozen, self._offset = None, value - self._source()
            else:
                self._frozen = value.astimezone(SHANGHAI)


@dataclass(frozen=True)
class Version:
    """One state of an order, valid from `at` (= its `modified`) until the next version."""

    at: dt.datetime
    order: dict[str, Any]
    consigned: dt.datetime | None


def _version(base: dict[str, Any], at: dt.datetime, line_refund: int | None = None, **fields: Any) -> Version:
    order = {**base, **fields}
    stamp = fmt(at)
    if "status" in fields:
        order["trade_status"] = fields["status"]
    if order["modified"] != stamp or fields or line_refund is not None:
        order["modified"] = stamp
        order["md5_str"] = hashlib.md5(f"{order['stockout_id']}|{stamp}".encode()).hexdigest()
        refund = {} if line_refund is None else {"refund_status": line_refund}
        order["details_list"] = [{**line, "modified": stamp, **refund} for line in base["details_list"]]
    return Version(at, order, parse_clock(order["consign_time"]))


@dataclass
class History:
    """All versions of one order, in time order; `times` mirrors `versions` for bisecting."""

    stockout_id: int
    tids: frozenset[str]
    versions: list[Version]
    times: list[dt.datetime] = field(init=False)

    def __post_init__(self) -> None:
        self.times = [v.at for v in self.versions]

    def at(self, when: dt.datetime) -> Version | None:
        i = bisect.bisect_right(self.times, when)
        return self.versions[i - 1] if i else None

    def pending(self, when: dt.datetime) -> Version | None:
        i = bisect.bisect_right(self.times, when)
        return self.versions[i] if i < len(self.versions) else None

    def happen_now(self, event: Version, when: dt.datetime) -> Version:
        """Move the pending `event` to `when` (the order changes now)."""
        i = next(i for i, v in enumerate(self.versions) if v is event)
        moved = _version(event.order, when)
        self.versions[i] = moved
        self.times[i] = when
        return moved


@dataclass(frozen=True)
class _Draws:
    """The per-order random decisions, drawn whether or not a rate uses them."""

    consign_delay: int
    late: float
    early_delay: int
    renumber: float
    renumber_at: float
    partial_at: float

    @classmethod
    def draw(cls, rng: random.Random) -> _Draws:
        return cls(rng.randint(0, 1800), rng.random(), rng.randint(60, 1800), rng.random(), rng.random(), rng.random())


def _between(start: dt.datetime, end: dt.datetime, share: float) -> dt.datetime:
    """A whole second strictly between start and end (which are at least 2 s apart)."""
    span = int((end - start).total_seconds())
    return start + dt.timedelta(seconds=min(span - 1, max(1, int(span * share))))


def build_history(final: dict[str, Any], draws: _Draws, *, late_rate: float, old_number: str | None) -> History:
    """Unfold one data-set order into its versions (see the module docstring)."""
    created = parse_clock(final["created"])
    checked = parse_clock(final["stock_check_time"])
    consigned = parse_clock(final["consign_time"])
    modified = parse_clock(final["modified"])
    assert created and checked and modified
    unshipped = dict(
        final,
        status=55,
        trade_status=55,
        consign_time=ZERO_DATETIME,
        stock_check_time=ZERO_DATETIME,
        consign_status=0,
        logistics_no="",
        batch_no="",
        ebill_status=0,
        bad_reason=0,
        refund_status=0,
    )
    versions = []
    if old_number is not None:
        versions.append(_version(unshipped, created, 0, order_no=old_number, stockout_no=old_number))
        versions.append(_version(unshipped, _between(created, checked, draws.renumber_at), 0))
    else:
        versions.append(_version(unshipped, created, 0))
    versions.append(_version(unshipped, checked, 0, stock_check_time=final["stock_check_time"], consign_status=1))
    status = final["status"]
    if status != 110:  # 5, 95 and 113 end in their data-set state, at their data-set modified
        versions.append(Version(modified, final, consigned))
    else:
        assert consigned is not None
        recorded = consigned + dt.timedelta(seconds=draws.consign_delay)
        versions.append(_version(final, recorded, status=95, consign_status=7))
        late = draws.late < late_rate
        completed = modified if late else recorded + dt.timedelta(seconds=draws.early_delay)
        if final.get("fenxiao_type") == 2 and (completed - recorded).total_seconds() >= 2:
            versions.append(
                _version(final, _between(recorded, completed, draws.partial_at), status=105, consign_status=7)
            )
        versions.append(Version(modified, final, consigned) if late else _version(final, completed))
    tids = frozenset(final["src_tids"].split(",")) | {line["src_tid"] for line in final["details_list"]}
    return History(final["stockout_id"], tids, versions)


class OrderStore:
    """Every order's history plus the clock and churn; all reads and changes under one lock."""

    def __init__(
        self,
        orders: Iterable[dict[str, Any]],
        clock: Clock,
        *,
        seed: int = 1,
        late_rate: float = 1.0,
        renumber_rate: float = 0.0,
        churn_rate: float = 0.0,
    ) -> None:
        self.clock = clock
        self.churn_rate = churn_rate
        self._churn_rng = random.Random(f"wdt-churn-{seed}")
        self._lock = threading.RLock()
        finals = sorted(orders, key=lambda o: o["stockout_id"])
        rng = random.Random(f"wdt-timeline-{seed}")
        taken = {o["order_no"] for o in finals} | {o["stockout_no"] for o in finals}
        sequences: dict[str, int] = {}
        self.histories: list[History] = []
        for final in finals:
            draws = _Draws.draw(rng)
            old = None
            if draws.renumber < renumber_rate:
                old = self._old_number(final["created"][:10].replace("-", ""), sequences, taken)
            self.histories.append(build_history(final, draws, late_rate=late_rate, old_number=old))

    @staticmethod
    def _old_number(day: str, sequences: dict[str, int], taken: set[str]) -> str:
        while True:
            sequences[day] = sequences.get(day, OLD_NUMBER_FIRST_SEQUENCE - 1) + 1
            number = f"CK{day}{sequences[day]:05d}"
            if number not in taken:
                taken.add(number)
                return number

    # -- clock ---------------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The emulator clock (aware, Asia/Shanghai)."""
        return self.clock.now()

    def set_now(self, value: dt.datetime, *, running: bool = False) -> None:
        """Freeze the clock at `value` (aware), or with `running=True` let it run on from there."""
        self.clock.set_now(value, running=running)

    # -- reads ---------------------------------------------------------------------------------------
    def visible(self, when: dt.datetime | None = None) -> list[Version]:
        """Each order as it is at `when` (aware; default the clock), ascending stockout_id."""
        local = to_local(when or self.now())
        with self._lock:
            return [v for h in self.histories if (v := h.at(local)) is not None]

    def orders(self, when: dt.datetime | None = None) -> list[dict[str, Any]]:
        """The orders as the API would return them at `when` (default: the clock)."""
        return [v.order for v in self.visible(when)]

    def ground_truth(self, start: dt.datetime, end: dt.datetime) -> dict[str, str]:
        """{stockout_id: order_no} of the orders at status 110 now with consign_time in [start, end)."""
        low, high = to_local(start), to_local(end)
        return {
            str(v.order["stockout_id"]): v.order["order_no"]
            for v in self.visible()
            if v.order["status"] == 110 and v.consigned is not None and low <= v.consigned < high
        }

    def read(self, matches: Predicate) -> list[dict[str, Any]]:
        """The orders matching now, after the churn (if it strikes) changed one of them."""
        with self._lock:
            local = to_local(self.now())
            if self.churn_rate > 0 and self._churn_rng.random() < self.churn_rate:
                self._churn(matches, local)
            return [
                v.order
                for h in self.histories
                if (v := h.at(local)) is not None and matches(v.order, v.consigned, v.at, h.tids)
            ]

    def _churn(self, matches: Predicate, now: dt.datetime) -> None:
        candidates = []
        for h in self.histories:
            event = h.pending(now)
            # Only what follows a consignment already made may happen early: a late-recorded shipment
            # or a payment/completion step. Creation, approval and cancellation keep their times.
            if event is None or event.consigned is None or event.consigned > now:
                continue
            current = h.at(now)
            before = current is not None and matches(current.order, current.consigned, current.at, h.tids)
            if before or matches(event.order, event.consigned, now, h.tids):
                candidates.append((h, event))
        if candidates:
            history, event = self._churn_rng.choice(candidates)
            history.happen_now(event, now)
