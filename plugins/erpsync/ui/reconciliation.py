"""The reconciliation (对账) pages: a DAG's reconciled days as a calendar, one day's totals, groups and
differences, and a day's exports (.xlsx, .csv) with Chinese column names.

What is shown is what ``erpsync.reconcile.store`` kept under the staging root; a day only becomes a path
once it matches ``DAY`` and is a real date. pandas and openpyxl are imported by the exports only.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KINDS: dict[str, tuple[str, str]] = {  # erpsync.reconcile.compare.KINDS, in its order
    "missing": ("缺失", "missing: in WDT, no bill in Kingdee"),
    "extra": ("多余", "extra: a bill in Kingdee no WDT document has"),
    "mismatched": ("不符", "mismatched: both exist, a value differs"),
    "deleted": ("已删除", "deleted: loaded once, gone from Kingdee"),
}
FIELDS: dict[str, str] = {
    "date": "日期",
    "party": "往来单位",
    "material": "物料",
    "warehouse": "仓库",
    "quantity": "数量",
    "amount": "金额",
    "line": "明细行",
}
REASONS: dict[str, str] = {  # the reasons erpsync.reconcile.compare gives, and the load outcomes it repeats
    "not read yet": "尚未读取",
    "unmapped": "未映射",
    "quarantined": "隔离",
    "held": "暂扣",
    "rejected": "被拒绝",
    "not in Kingdee any more": "金蝶中已不存在",
    "duplicate": "重复单据",
    "no WDT document": "无旺店通单据",
}
# the differences' export: compare.DIFFERENCE_COLUMNS -> Chinese column name
EXPORT_COLUMNS: dict[str, str] = {
    "kind": "类型",
    "wdt_no": "旺店通单号",
    "kingdee_bill_no": "金蝶单号",
    "kingdee_id": "金蝶内码",
    "field": "字段",
    "line": "明细",
    "wdt": "旺店通值",
    "kingdee": "金蝶值",
    "reason": "原因",
    "detail": "说明",
}
# the totals' export: one row per party, warehouse and material (compare.GROUP_COLUMNS), their differences
SUMMARY_COLUMNS: dict[str, str] = {
    "party": "往来单位",
    "warehouse": "仓库",
    "material": "物料",
    "wdt_documents": "旺店通单据数",
    "wdt_quantity": "旺店通数量",
    "wdt_amount": "旺店通金额",
    "kingdee_bills": "金蝶单据数",
    "kingdee_quantity": "金蝶数量",
    "kingdee_amount": "金蝶金额",
    "quantity_difference": "数量差异",
    "amount_difference": "金额差异",
}
TOTAL_LABEL = "合计"
ROW_LIMIT = 500  # differences of one kind on a page; the exports have them all
_FIGURES = ("wdt_documents", "wdt_quantity", "wdt_amount", "kingdee_bills", "kingdee_quantity", "kingdee_amount")


def valid_day(text: str) -> bool:
    """Whether ``text`` is a date written YYYY-MM-DD (checked before it becomes part of a path)."""
    if not DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def decimal(value: Any) -> Decimal:
    """A stored figure (text or a number) as a Decimal; empty or unreadable is 0."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def plain(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros (compare.number's form)."""
    return format(value.normalize(), "f") if value else "0"


def signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + plain(value)


def kind_label(kind: str) -> str:
    return KINDS[kind][0] if kind in KINDS else kind


def field_label(name: Any) -> Any:
    return FIELDS.get(name, name) if isinstance(name, str) else name


def reason_label(reason: Any) -> Any:
    return REASONS.get(reason, reason) if isinstance(reason, str) else reason


def is_clean(counts: Mapping[str, Any]) -> bool:
    return not any(int(v or 0) for v in counts.values())


# -- the calendar ------------------------------------------------------------------------------------


@dataclass
class Cell:
    day: date | None  # None: a blank before the month's first day or after its last
    summary: dict[str, Any] | None = None  # the day's summary.json, if it was reconciled

    @property
    def state(self) -> str:
        if self.day is None:
            return "blank"
        if self.summary is None:
            return "none"
        return "ok" if is_clean(self.summary.get("counts") or {}) else "bad"


@dataclass
class Month:
    year: int
    month: int
    weeks: list[list[Cell]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.year}-{self.month:02d}"


def months(summaries: Sequence[Mapping[str, Any]], limit: int = 12) -> list[Month]:
    """Calendar months (Monday first), newest first, from the newest reconciled day's month back to the
    oldest one's, at most ``limit`` of them (the table under the calendar lists every day)."""
    by_day: dict[date, dict[str, Any]] = {}
    for s in summaries:
        text = str(s.get("day", ""))
        if valid_day(text):
            by_day[date.fromisoformat(text)] = dict(s)
    if not by_day:
        return []
    newest, oldest = max(by_day), min(by_day)
    year, month = newest.year, newest.month
    found: list[Month] = []
    while (year, month) >= (oldest.year, oldest.month) and len(found) < limit:
        shown = Month(year, month)
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
            shown.weeks.append([Cell(d, by_day.get(d)) if d.month == month else Cell(None) for d in week])
        found.append(shown)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found


# -- one day -----------------------------------------------------------------------------------------


@dataclass
class Totals:
    """Both sides' totals of a day and their difference (Kingdee − WDT)."""

    rows: list[tuple[str, str, str, str]]  # (label, WDT, Kingdee, difference)
    agree: bool


def totals(values: Mapping[str, Mapping[str, Any]]) -> Totals:
    wdt, kingdee = values.get("wdt") or {}, values.get("kingdee") or {}
    rows = []
    agree = True
    for label, left, right in (
        ("单据 Documents / bills", wdt.get("documents"), kingdee.get("bills")),
        ("数量 Quantity", wdt.get("quantity"), kingdee.get("quantity")),
        ("金额 Amount", wdt.get("amount"), kingdee.get("amount")),
    ):
        difference = decimal(right) - decimal(left)
        agree = agree and not difference
        rows.append((label, plain(decimal(left)), plain(decimal(right)), signed(difference)))
    return Totals(rows, agree)


def group_rows(groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The per party, warehouse and material rows with their differences (Kingdee − WDT), those whose
    sides differ first (each part in the stored order)."""
    rows = []
    for g in groups:
        quantity = decimal(g.get("kingdee_quantity")) - decimal(g.get("wdt_quantity"))
        amount = decimal(g.get("kingdee_amount")) - decimal(g.get("wdt_amount"))
        count = decimal(g.get("kingdee_bills")) - decimal(g.get("wdt_documents"))
        rows.append(
            {
                **{k: g.get(k) for k in ("party", "warehouse", "material")},
                **{k: plain(decimal(g.get(k))) for k in _FIGURES},
                "quantity_difference": signed(quantity),
                "amount_difference": signed(amount),
                "differs": bool(quantity or amount or count),
            }
        )
    return sorted(rows, key=lambda r: not r["differs"])


def by_kind(differences: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The differences per kind, in compare.KINDS' order (kinds without a difference included)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in KINDS}
    for d in differences:
        grouped.setdefault(str(d.get("kind")), []).append(d)
    return grouped


# -- exports -----------------------------------------------------------------------------------------


def _difference_frame(differences: Sequence[Mapping[str, Any]]) -> Any:
    import pandas as pd

    rows = [
        {
            **{k: d.get(k) for k in EXPORT_COLUMNS},
            "kind": kind_label(str(d.get("kind"))),
            "field": field_label(d.get("field")),
            "reason": reason_label(d.get("reason")),
        }
        for d in differences
    ]
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS)).rename(columns=EXPORT_COLUMNS)


def _summary_frame(groups: Sequence[Mapping[str, Any]], day_totals: Mapping[str, Mapping[str, Any]]) -> Any:
    import pandas as pd

    rows: list[dict[str, Any]] = [{k: r[k] for k in SUMMARY_COLUMNS} for r in group_rows(groups)]
    wdt, kingdee = day_totals.get("wdt") or {}, day_totals.get("kingdee") or {}
    rows.append(
        {
            "party": TOTAL_LABEL,
            "warehouse": None,
            "material": None,
            "wdt_documents": wdt.get("documents"),
            "wdt_quantity": wdt.get("quantity"),
            "wdt_amount": wdt.get("amount"),
            "kingdee_bills": kingdee.get("bills"),
            "kingdee_quantity": kingdee.get("quantity"),
            "kingdee_amount": kingdee.get("amount"),
            "quantity_difference": decimal(kingdee.get("quantity")) - decimal(wdt.get("quantity")),
            "amount_difference": decimal(kingdee.get("amount")) - decimal(wdt.get("amount")),
        }
    )
    for row in rows:  # numbers in the workbook, not text: a spreadsheet sums them
        for k in (*_FIGURES, "quantity_difference", "amount_difference"):
            value = decimal(row[k])
            row[k] = int(value) if k in ("wdt_documents", "kingdee_bills") else float(value)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).rename(columns=SUMMARY_COLUMNS)


def export_xlsx(result: Any) -> bytes:
    """The day as a workbook: 差异 (every difference) and 汇总 (per party, warehouse, material; 合计 last)."""
    import io

    import pandas as pd

    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        _difference_frame(result.differences).to_excel(writer, sheet_name="差异", index=False)
        _summary_frame(result.groups, result.totals).to_excel(writer, sheet_name="汇总", index=False)
        for sheet in writer.sheets.values():
            sheet.freeze_panes = "A2"
            for column in sheet.columns:
                width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
                sheet.column_dimensions[column[0].column_letter].width = min(max(width * 1.6, 8), 60)
    return buffer.getvalue()


def export_csv(result: Any) -> bytes:
    """The day's differences as CSV in UTF-8 with a BOM (so Excel opens it with the Chinese intact)."""
    text: str = _difference_frame(result.differences).to_csv(index=False, lineterminator="\r\n")
    return text.encode("utf-8-sig")


# the day's exports: file suffix -> (what writes it, its media type)
EXPORTS = {
    "xlsx": (export_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "csv": (export_csv, "text/csv; charset=utf-8"),
}
