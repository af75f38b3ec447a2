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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

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


def source_reading(scheme: Scheme, days: list[date], now: pendulum.DateTime) -> tuple[Source, Window]:
    """How to read every document whose business day is one of ``days``: the source settings to open the
    reader with, and the window to read.

    On last-modified time from the first day to ``now`` where the API can (a document is modified at or
    after its business time, and may complete days later), else the days themselves on the API's time.
    """
    api, zone = scheme.source.api, scheme.settings.timezone
    window = days_window(days, zone)
    if not (api.by_modified_params or api.always_by_modified):
        return scheme.source, window
    end = max(now.in_timezone(zone).replace(microsecond=0), window.end)
    return scheme.edited("source.by_modified", True).source, Window(window.start, end)


def read_documents(
    scheme: Scheme, mapping: BillMapping, reader: Reader, window: Window, days: list[date]
) -> tuple[list[Doc], set[str]]:
    """The documents of ``days`` as the source has them now (``reader`` over ``window``, as
    :func:`source_reading` says), and the bill keys of every document read."""
    wanted = {d.isoformat() for d in days}
    reading = _Reading(scheme, mapping, business_date_field(scheme), wanted, days_window(days, window.timezone).end)
    for order in reader.orders(window):
        reading.add(order)
    log.info(
        "Read %d documents of %s in %s, %d of them on the days",
        reading.read,
        scheme.source.api.method,
        window,
        len(reading.docs),
    )
    return reading.docs, reading.keys


class _Reading:
    """Turns the orders read into documents, keeping those of the wanted days."""

    def __init__(self, scheme: Scheme, mapping: BillMapping, date_field: str, wanted: set[str], now: Any) -> None:
        self.scheme, self.mapping, self.date_field, self.wanted, self.now = scheme, mapping, date_field, wanted, now
        self.fields = reconcile_fields(scheme)
        self.form = scheme.target.form
        self.requires = [r.source_field for r in scheme.target.requires]
        amount = self.fields.amount.lower()  # sent by the mapping, or computed by the target from the price
        self.amount_sent = any(r.field.split(".")[-1].lower() == amount and r.value for r in scheme.target.mapping)
        self.docs: list[Doc] = []
        self.keys: set[str] = set()
        self.read = 0

    def add(self, order: Mapping[str, Any]) -> None:
        api, keys = self.scheme.source.api, self.scheme.source.keys
        row, lines = stage_rows(order, api)
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
        day = self._day(row.get(self.date_field))
        if day is None or day not in self.wanted:
            return
        doc = Doc(order_id, order_no, built.bill_no if built else None, day, problem=problem)
        if built is not None:
            doc.bill = bill_record(built, row, keys, self.requires)
            self._expect(doc, built.model)
        self.docs.append(doc)

    def _day(self, text: Any) -> str | None:
        api = self.scheme.source.api
        try:
            moment = pendulum.from_format(str(text), api.time_format, tz=api.timezone)
        except ValueError:
            return None  # not set ("0000-00-00 00:00:00"): not done
        return str(moment.in_timezone(self.scheme.settings.timezone).date().isoformat())

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
        found = self.form.field(key)
        if found is None:
            return None
        holder = model if found.entity == "header" else model.get(found.entity) or {}
        return _get(holder, found.key)


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
