"""The two sides of a reconciliation, in one shape: what the source says the target should hold
(:class:`Doc`, built by the scheme's own mapping from the documents as the source has them now) and what
the target holds (:class:`Bill`), and what the load reports know of each document (:class:`Known`).

Both sides are read in the target's terms (customer, stock, material numbers), so a value map between
a WDT shop and a Kingdee customer is compared as the pipeline applies it. The amount the source side
expects is the form's amount field where the mapping sends one, else ``round(quantity x price, 2)``
half up, which is how the target computes it (``ReconcileFields.price``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from queue import Full, Queue
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pendulum

from erpsync.connectors import BillQuery, Reader, Writer
from erpsync.mapping.compile import Bill as MappedBill
from erpsync.mapping.compile import BillMapping, MappingError
from erpsync.outcomes import REPORT_COLUMNS
from erpsync.scheme import ReconcileFields, Scheme, Source
from erpsync.staging import StoragePath, read_parts, window_folders
from erpsync.steps.extract import stage_rows
from erpsync.steps.load import given
from erpsync.steps.transform import bill_record, line_sort_key
from erpsync.windows import Window

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
Line = tuple[str, str]  # (material, warehouse)
T = TypeVar("T")


class ReconcileError(ValueError):
    """A scheme that cannot be reconciled (no reconcile fields on its form, no business date)."""


@dataclass
class Doc:
    """One source document in its final status, as the target should hold it."""

    order_id: str
    order_no: str
    key: str | None  # the bill key's value; None when the mapping cannot build the bill
    day: str  # its business day (yyyy-MM-dd) in the scheme's zone
    date: str | None = None  # the day the bill should carry
    party: str | None = None
    lines: dict[Line, list[Decimal]] = field(default_factory=dict)  # (material, warehouse) -> [quantity, amount]
    problem: str = ""  # why no bill could be built
    bill: dict[str, Any] | None = None  # the bills.jsonl record, for a re-push


@dataclass
class Bill:
    """One bill of the target as it is now."""

    bill_id: str
    bill_no: str
    key: str | None
    date: str | None
    party: str | None
    lines: dict[Line, list[Decimal]] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    """The last outcome a load report gave a document."""

    outcome: str
    detail: str
    window: str  # the window folder whose report says it
    at: str
    kingdee_id: str | None = None
    kingdee_number: str | None = None


def reconcile_fields(scheme: Scheme) -> ReconcileFields:
    fields: ReconcileFields | None = scheme.target.form.reconcile
    if fields is None:
        raise ReconcileError(
            f"{scheme.target.form.path.name} has no 'reconcile:' section: its form cannot be reconciled"
        )
    return fields


def business_date_field(scheme: Scheme) -> str:
    """The source field whose day a document belongs to: ``settings.reconcile.date``, else the field the
    mapping sends to the form's date field (``FDate: {{consign_time}}`` -> consign_time)."""
    named: str = scheme.settings.reconcile.date
    api = scheme.source.api
    if not named:
        date_key = reconcile_fields(scheme).date.lower()
        for row in scheme.target.mapping:
            value = row.value.strip()
            if row.field.split(".")[-1].lower() == date_key and value.startswith("{{") and value.endswith("}}"):
                named = value[2:-2].strip()
                break
        else:
            raise ReconcileError(
                f"{scheme.path.name}: the mapping of {date_key} is not one source field; name it in settings.reconcile.date"
            )
    if named not in api.order_fields:
        raise ReconcileError(
            f"{scheme.path.name}: settings.reconcile.date {named!r} is not an order field of {api.method}"
        )
    return named


def days_window(days: list[date], zone: str) -> Window:
    """``[first day 00:00, day after the last 00:00)`` in ``zone``."""
    first, last = min(days), max(days)
    start = pendulum.datetime(first.year, first.month, first.day, tz=zone)
    end = pendulum.datetime(last.year, last.month, last.day, tz=zone).add(days=1)
    return Window(start, end)


def reading_days(days: list[date], scheme: Scheme) -> Window:
    """``days`` in the scheme's zone and in the API's, whichever reaches further each way: the source
    times the documents of the days lie in, and those of the bills the target dates on them (the
    mapping writes the target's date as the API's local time)."""
    ours, theirs = days_window(days, scheme.settings.timezone), days_window(days, scheme.source.api.timezone)
    return Window(min(ours.start, theirs.start), max(ours.end, theirs.end)).in_timezone(scheme.settings.timezone)


def source_reading(scheme: Scheme, days: list[date], now: pendulum.DateTime) -> tuple[Source, Window]:
    """How to read every document whose business day is one of ``days``, and every document whose bill
    the target may date on them: the source settings to open the reader with, and the window to read.

    On last-modified time from the first day to ``now`` where the API can (a document is modified at or
    after its business time, and may complete days later), else the days themselves on the API's time.
    """
    api = scheme.source.api
    window = reading_days(days, scheme)
    if not (api.by_modified_params or api.always_by_modified):
        return scheme.source, window
    end = max(now.in_timezone(window.timezone).replace(microsecond=0), window.end)
    return scheme.edited("source.by_modified", True).source, Window(window.start, end)


def read_documents(
    scheme: Scheme, mapping: BillMapping, reader: Reader, window: Window, days: list[date]
) -> tuple[list[Doc], set[str]]:
    """The documents of ``days`` as the source has them now (``reader`` over ``window``, as
    :func:`source_reading` says), and the bill keys of every document read.

    Pages are fetched in a thread while the documents already read are mapped here: the fetching waits
    on the network and the API's call limit, the mapping on the CPU."""
    wanted = {d.isoformat() for d in days}
    end = days_window(days, scheme.settings.timezone).end  # NOW() in the mapping, as the days' last window gives it
    reading = _Reading(scheme, mapping, business_date_field(scheme), wanted, end)
    for order in prefetched(reader.orders(window), PREFETCH):
        reading.add(order)
    log.info(
        "Read %d documents of %s in %s, %d of them on the days",
        reading.read,
        scheme.source.api.method,
        window,
        len(reading.docs),
    )
    return reading.docs, reading.keys


PREFETCH = 5000  # documents fetched ahead of the mapping: a few pages


def prefetched(items: Iterable[T], ahead: int) -> Iterator[T]:
    """``items`` in order, produced by a thread up to ``ahead`` items ahead of the consumer; an error
    the producer meets is raised here, where the items are consumed."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():  # the consumer may have stopped: never block on a full queue for good
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))

    producer = threading.Thread(target=produce, name="reconcile-source", daemon=True)
    producer.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        producer.join()


class _Reading:
    """Turns the orders read into documents, keeping those of the wanted days."""

    def __init__(self, scheme: Scheme, mapping: BillMapping, date_field: str, wanted: set[str], now: Any) -> None:
        self.scheme, self.mapping, self.date_field, self.wanted, self.now = scheme, mapping, date_field, wanted, now
        self.fields = reconcile_fields(scheme)
        self.form = scheme.target.form
        self.requires = [r.source_field for r in scheme.target.requires]
        amount = self.fields.amount.lower()  # sent by the mapping, or computed by the target from the price
        self.amount_sent = any(r.field.split(".")[-1].lower() == amount and r.value for r in scheme.target.mapping)
        order_columns, line_columns = mapping.source_columns()  # only what the mapping reads is staged
        keys = scheme.source.keys
        self.order_columns = order_columns | {keys.order, keys.number, date_field, *self.requires}
        self.line_columns = line_columns | {keys.order, keys.line}
        self.header_fields = {  # date, party -> (entity, field key): looked up once, not per document
            key: (found.entity, found.key)
            for key in (self.fields.date, self.fields.party)
            if (found := self.form.field(key)) is not None
        }
        self.day_of = day_parser(scheme.source.api.time_format, scheme.source.api.timezone, scheme.settings.timezone)
        self.docs: list[Doc] = []
        self.keys: set[str] = set()
        self.read = 0

    def add(self, order: Mapping[str, Any]) -> None:
        api, keys = self.scheme.source.api, self.scheme.source.keys
        row, lines = stage_rows(self._narrow(order, api.line_list_key), api)
        self.read += 1
        lines.sort(key=lambda line: line_sort_key(line.get(keys.line)))
        order_id, order_no = str(row.get(keys.order)), str(row.get(keys.number))
        built: MappedBill | None = None
        problem = ""
        try:
            built = self.mapping.build(row, lines, self.now)
        except MappingError as exc:
            problem = f"{exc.field}: {exc.message}"
        else:
            self.keys.add(built.bill_no)
        day = self.day_of(row.get(self.date_field))
        if day is None or day not in self.wanted:
            return
        doc = Doc(order_id, order_no, built.bill_no if built else None, day, problem=problem)
        if built is not None:
            doc.bill = bill_record(built, row, keys, self.requires)
            self._expect(doc, built.model)
        self.docs.append(doc)

    def _narrow(self, order: Mapping[str, Any], line_list: str) -> dict[str, Any]:
        narrow = {k: order[k] for k in self.order_columns if k in order}
        details = order.get(line_list)
        if isinstance(details, list):
            narrow[line_list] = [
                {k: line[k] for k in self.line_columns if k in line} if isinstance(line, Mapping) else line
                for line in details
            ]
        elif line_list in order:
            narrow[line_list] = details  # stage_rows names what is wrong with it
        return narrow

    def _expect(self, doc: Doc, model: Mapping[str, Any]) -> None:
        f = self.fields
        doc.date = _as_day(self._header(model, f.date))
        doc.party = _as_text(self._header(model, f.party))
        for row in model.get(self.form.entry_entity) or []:
            quantity = _as_decimal(_get(row, f.quantity)) or Decimal(0)
            if self.amount_sent:
                amount = _as_decimal(_get(row, f.amount)) or Decimal(0)
            else:
                price = _as_decimal(_get(row, f.price)) if f.price else None
                amount = (quantity * price).quantize(CENT, ROUND_HALF_UP) if price is not None else Decimal(0)
            line = (_as_text(_get(row, f.material)) or "", _as_text(_get(row, f.warehouse)) or "")
            total = doc.lines.setdefault(line, [Decimal(0), Decimal(0)])
            total[0] += quantity
            total[1] += amount

    def _header(self, model: Mapping[str, Any], key: str) -> Any:
        found = self.header_fields.get(key)
        if found is None:
            return None
        entity, name = found
        holder = model if entity == "header" else model.get(entity) or {}
        return _get(holder, name)


_STRPTIME = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_FORMAT_TOKEN = re.compile(r"\[([^\]]*)\]|[A-Za-z]+|[^A-Za-z\[]+")


def day_parser(time_format: str, api_zone: str, zone: str) -> Callable[[Any], str | None]:
    """``text -> its day (yyyy-MM-dd) in zone``, for the API's times (``time_format`` in ``api_zone``);
    None for a time not set ("0000-00-00 00:00:00"). The usual formats go through ``strptime``, ten times
    faster than pendulum's parser, which takes any other."""
    parts = []
    for token in _FORMAT_TOKEN.finditer(time_format):
        text = token.group(0)
        if token.group(1) is not None or not text[0].isalpha():
            parts.append((token.group(1) if token.group(1) is not None else text).replace("%", "%%"))
        elif text in _STRPTIME:
            parts.append(_STRPTIME[text])
        else:
            return partial(_pendulum_day, time_format, api_zone, zone)
    pattern, source, target = "".join(parts), ZoneInfo(api_zone), ZoneInfo(zone)

    def day(text: Any) -> str | None:
        try:
            moment = datetime.strptime(str(text), pattern)
        except ValueError:
            return None
        if api_zone != zone:
            moment = moment.replace(tzinfo=source).astimezone(target)
        return moment.date().isoformat()

    return day


def _pendulum_day(time_format: str, api_zone: str, zone: str, text: Any) -> str | None:
    try:
        moment = pendulum.from_format(str(text), time_format, tz=api_zone)
    except ValueError:
        return None
    return str(moment.in_timezone(zone).date().isoformat())


def _get(holder: Mapping[str, Any], key: str) -> Any:
    if key in holder:
        return holder[key]
    lowered = key.lower()
    return next((v for k, v in holder.items() if k.lower() == lowered), None)


def _as_text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # a reference: {"FNumber": "CUST0001"}
        value = next(iter(value.values()), None)
    return None if value is None or value == "" else str(value)


def _as_day(value: Any) -> str | None:
    text = _as_text(value)
    return text[:10] if text else None


def _as_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def read_bills(
    scheme: Scheme, writer: Writer, days: list[date], keys: Iterable[str], *, dated: bool = True
) -> list[Bill]:
    """The target's bills of the scheme's form: those of ``keys`` and (``dated``) those dated on ``days``."""
    f = reconcile_fields(scheme)
    form = scheme.target.form
    names = {**f.header, **f.lines}
    references = frozenset(key for key in names.values() if (found := form.field(key)) and found.kind == "basedata")
    query = BillQuery(
        form=form.form_id,
        entry=form.entry_entity,
        key=scheme.target.bill_key,
        keys=sorted(keys),
        date=f.date,
        start=min(days),
        end=max(days) + timedelta(days=1),
        header=f.header,
        lines=f.lines,
        references=references,
        dated=dated,
    )
    bills: dict[str, Bill] = {}
    for row in writer.read_bills(query):
        bill = bills.get(row["bill_id"])
        if bill is None:
            bill = bills[row["bill_id"]] = Bill(
                row["bill_id"], row["bill_no"] or "", row["key"], row.get("date"), row.get("party")
            )
        if row.get("material") is None and row.get("quantity") is None:
            continue  # a bill without entry rows
        line = (row.get("material") or "", row.get("warehouse") or "")
        total = bill.lines.setdefault(line, [Decimal(0), Decimal(0)])
        total[0] += row.get("quantity") or Decimal(0)
        total[1] += row.get("amount") or Decimal(0)
    return list(bills.values())


def known_outcomes(root: StoragePath, scheme: Scheme, since: pendulum.DateTime) -> dict[str, Known]:
    """order id -> the last outcome a whole window's load report gave it (windows ending after ``since``)."""
    found: dict[str, Known] = {}
    folders = [
        f for f in window_folders(root, scheme.dag_id, scheme.settings.timezone) if f.whole and f.window.end > since
    ]
    for folder in sorted(folders, key=lambda f: f.window.start):
        report = read_parts(folder.path / "load_report", REPORT_COLUMNS)
        for row in report.itertuples(index=False):
            order_id = _cell(row.order_id)
            if order_id is None:
                continue
            at = _cell(row.at) or ""
            previous = found.get(order_id)
            if previous is not None and previous.at > at:
                continue
            detail = "; ".join(t for t in (_cell(row.field), _cell(row.message)) if t)
            found[order_id] = Known(
                str(row.outcome), detail, folder.name, at, _cell(row.kingdee_id), _cell(row.kingdee_number)
            )
    return found


def _cell(value: Any) -> str | None:
    return str(value) if given(value) else None
