"""One day's comparison: the source's documents of the day against the target's bills, to the cent.

Each document is matched to its bill by the scheme's bill key. The kinds of difference:

- ``missing``: done in the source, no bill in the target; the reason is the last outcome a load report
  gave it (quarantined, held, rejected, unmapped), "not read yet" when no report names it;
- ``deleted``: a load report says the bill was created (or found), and the target no longer has it;
- ``mismatched``: both exist and a compared field differs (date, party, and per material and warehouse
  the quantity and amount), with both values; a line only one side has is a ``line`` difference;
- ``extra``: a bill dated on the day whose key no document read has (made by hand, or left behind by a
  renumbered document), or a second bill of one document.

A bill belongs to the day of the document whose key it has, whatever date it carries (a date changed
in the target is a ``mismatched`` date of the document's day), and a bill of no document to the day it
is dated. Totals are per party, warehouse and material on both sides: the documents of the day as the
mapping makes them, and the bills of the day. A missing document counts on the source side only, an
extra bill on the target side only, so the totals differ by exactly the differences' amounts, also for
a scheme whose zone is not the API's (its documents' days and its bills' dates part at midnight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync.reconcile.sides import Bill, Doc, Known, Line

KINDS = ("missing", "extra", "mismatched", "deleted")
LOADED = ("created", "existing")  # a report outcome that means the bill was in the target
DIFFERENCE_COLUMNS = [
    "kind",
    "wdt_no",
    "order_id",
    "bill_key",
    "kingdee_bill_no",
    "kingdee_id",
    "field",
    "line",
    "wdt",
    "kingdee",
    "reason",
    "detail",
]
GROUP_COLUMNS = [
    "party",
    "warehouse",
    "material",
    "wdt_documents",
    "wdt_quantity",
    "wdt_amount",
    "kingdee_bills",
    "kingdee_quantity",
    "kingdee_amount",
]


def number(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros ("3", "19.9", "0")."""
    text = format(value.normalize(), "f") if value else "0"
    return text


@dataclass
class DayResult:
    day: str
    scheme: str
    dag_id: str
    totals: dict[str, dict[str, str | int]]  # "wdt" | "kingdee" -> documents/bills, lines, quantity, amount
    groups: list[dict[str, Any]] = field(default_factory=list)  # GROUP_COLUMNS, per party, warehouse, material
    differences: list[dict[str, Any]] = field(default_factory=list)  # DIFFERENCE_COLUMNS

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.differences if d["kind"] == kind]

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(self.of_kind(kind)) for kind in KINDS}

    @property
    def clean(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` object: day, scheme, totals, then each kind's differences."""

        def brief(row: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in row.items() if k != "kind" and v not in (None, "")}

        return {
            "day": self.day,
            "scheme": self.scheme,
            "dag_id": self.dag_id,
            "totals": self.totals,
            **{kind: [brief(d) for d in self.of_kind(kind)] for kind in KINDS},
        }


def _difference(kind: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(DIFFERENCE_COLUMNS)
    row.update(kind=kind, **values)
    return row


def compare_day(
    day: str,
    scheme: str,
    dag_id: str,
    docs: Iterable[Doc],
    bills: Iterable[Bill],
    keys_read: set[str],
    known: Mapping[str, Known],
) -> DayResult:
    """Compare the documents of ``day`` with the target's bills. ``docs`` are the documents of every day
    reconciled, ``bills`` the target's bills of their keys and those it dates on the days, ``keys_read``
    the keys of every document read, whatever its day.

    A bill belongs to the day of its document (whatever date it carries: a changed date is a
    difference of that day), a bill of no document read to the day it is dated; the day's target side
    (its totals) is the first bill of each document of the day and the day's extra bills."""
    owner = {d.key: d.day for d in docs if d.key}
    docs = [d for d in docs if d.day == day]
    ordered = sorted(bills, key=lambda b: _id_order(b.bill_id))
    by_key: dict[str, list[Bill]] = defaultdict(list)
    for bill in ordered:
        if bill.key:
            by_key[bill.key].append(bill)
    held: list[Bill] = []
    differences: list[dict[str, Any]] = []
    for doc in docs:
        found = by_key.get(doc.key or "", [])
        if found:
            held.append(found[0])
            differences += _mismatches(doc, found[0])
            continue
        said = known.get(doc.order_id)
        if said is not None and said.outcome in LOADED:
            differences.append(
                _difference(
                    "deleted",
                    wdt_no=doc.order_no,
                    order_id=doc.order_id,
                    bill_key=doc.key,
                    kingdee_bill_no=said.kingdee_number,
                    kingdee_id=said.kingdee_id,
                    reason="not in Kingdee any more",
                    detail=f"{said.outcome} by {said.window} at {said.at}",
                )
            )
            continue
        reason = said.outcome if said is not None else ("unmapped" if doc.problem else "not read yet")
        detail = (said.detail if said is not None else doc.problem) or None
        differences.append(
            _difference(
                "missing", wdt_no=doc.order_no, order_id=doc.order_id, bill_key=doc.key, reason=reason, detail=detail
            )
        )
    for bill in ordered:
        if bill.key in owner:
            if owner[bill.key] != day or by_key[bill.key][0] is bill:
                continue  # another day's, or the document's own bill
            reason, detail = "duplicate", f"a second bill of {bill.key} (the first is {by_key[bill.key][0].bill_no})"
        elif (bill.key and bill.key in keys_read) or bill.date != day:
            continue  # the bill of a document of a day not reconciled here
        else:
            reason, detail = "no WDT document", f"no document read has {bill.key or 'an empty key'}"
        held.append(bill)
        differences.append(
            _difference(
                "extra",
                bill_key=bill.key,
                kingdee_bill_no=bill.bill_no,
                kingdee_id=bill.bill_id,
                reason=reason,
                detail=detail,
                kingdee=_describe(bill.lines),
            )
        )
    groups, totals = _totals(docs, held)
    return DayResult(day, scheme, dag_id, totals, groups, differences)


def _id_order(bill_id: str) -> tuple[int, str]:
    return (int(bill_id), "") if bill_id.isdigit() else (1 << 62, bill_id)


def _mismatches(doc: Doc, bill: Bill) -> list[dict[str, Any]]:
    base = {"wdt_no": doc.order_no, "order_id": doc.order_id, "bill_key": doc.key}
    base |= {"kingdee_bill_no": bill.bill_no, "kingdee_id": bill.bill_id}
    found: list[dict[str, Any]] = []
    for name, expected, actual in (("date", doc.date, bill.date), ("party", doc.party, bill.party)):
        if (expected or "") != (actual or ""):
            found.append(_difference("mismatched", **base, field=name, wdt=expected, kingdee=actual))
    only_doc = sorted(set(doc.lines) - set(bill.lines))
    only_bill = sorted(set(bill.lines) - set(doc.lines))
    if len(only_doc) == 1 and len(only_bill) == 1:  # one line whose material or warehouse was changed
        changed = _line(only_doc[0])
        for index, name in enumerate(("material", "warehouse")):
            if only_doc[0][index] != only_bill[0][index]:
                found.append(
                    _difference(
                        "mismatched",
                        **base,
                        field=name,
                        line=changed,
                        wdt=only_doc[0][index],
                        kingdee=only_bill[0][index],
                    )
                )
        pairs = [(only_doc[0], only_bill[0])]
    else:
        for mine in only_doc:
            found.append(
                _difference(
                    "mismatched", **base, field="line", line=_line(mine), wdt=_describe({mine: doc.lines[mine]})
                )
            )
        for theirs in only_bill:
            found.append(
                _difference(
                    "mismatched",
                    **base,
                    field="line",
                    line=_line(theirs),
                    kingdee=_describe({theirs: bill.lines[theirs]}),
                )
            )
        pairs = []
    pairs += [(same, same) for same in sorted(set(doc.lines) & set(bill.lines))]
    for mine, theirs in pairs:
        for index, name in enumerate(("quantity", "amount")):
            wanted, held = doc.lines[mine][index], bill.lines[theirs][index]
            if wanted != held:
                found.append(
                    _difference(
                        "mismatched", **base, field=name, line=_line(mine), wdt=number(wanted), kingdee=number(held)
                    )
                )
    return found


def _line(line: Line) -> str:
    material, warehouse = line
    return f"{material}@{warehouse}" if warehouse else material


def _describe(lines: Mapping[Line, list[Decimal]]) -> str:
    return "; ".join(f"{_line(line)} × {number(q)} = {number(a)}" for line, (q, a) in sorted(lines.items()))


def _totals(docs: list[Doc], bills: list[Bill]) -> tuple[list[dict[str, Any]], dict[str, dict[str, str | int]]]:
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(side: str, ident: str, party: str | None, lines: Mapping[Line, list[Decimal]]) -> None:
        for (material, warehouse), (quantity, amount) in lines.items():
            group = groups.setdefault(
                (party or "", warehouse, material),
                {
                    "wdt": set(),
                    "kingdee": set(),
                    "wdt_quantity": Decimal(0),
                    "wdt_amount": Decimal(0),
                    "kingdee_quantity": Decimal(0),
                    "kingdee_amount": Decimal(0),
                },
            )
            group[side].add(ident)
            group[f"{side}_quantity"] += quantity
            group[f"{side}_amount"] += amount

    for doc in docs:
        add("wdt", doc.order_id, doc.party, doc.lines)
    for bill in bills:
        add("kingdee", bill.bill_id, bill.party, bill.lines)
    rows = [
        {
            "party": party,
            "warehouse": warehouse,
            "material": material,
            "wdt_documents": len(g["wdt"]),
            "wdt_quantity": number(g["wdt_quantity"]),
            "wdt_amount": number(g["wdt_amount"]),
            "kingdee_bills": len(g["kingdee"]),
            "kingdee_quantity": number(g["kingdee_quantity"]),
            "kingdee_amount": number(g["kingdee_amount"]),
        }
        for (party, warehouse, material), g in sorted(groups.items())
    ]

    def side(lines_of: list[Mapping[Line, list[Decimal]]], count: int, name: str) -> dict[str, str | int]:
        quantity = sum((q for lines in lines_of for q, _ in lines.values()), Decimal(0))
        amount = sum((a for lines in lines_of for _, a in lines.values()), Decimal(0))
        return {name: count, "quantity": number(quantity), "amount": number(amount)}

    totals = {
        "wdt": side([d.lines for d in docs], len(docs), "documents"),
        "kingdee": side([b.lines for b in bills], len(bills), "bills"),
    }
    return rows, totals


def new_differences(previous: DayResult | None, result: DayResult) -> list[dict[str, Any]]:
    """The differences of ``result`` that ``previous`` (the day's last stored result) did not have: what
    a daily re-check tells the robots, so one difference alerts once however many days it is checked."""

    def identity(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(k) for k in ("kind", "order_id", "kingdee_id", "field", "line", "wdt", "kingdee"))

    seen = {identity(d) for d in previous.differences} if previous is not None else set()
    return [d for d in result.differences if identity(d) not in seen]
