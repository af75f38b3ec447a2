"""Reading bills back for a reconciliation (对账): :class:`erpsync.connectors.BillQuery` as
ExecuteBillQuery calls, every page.

A bill is asked for by its date (the bills of the days, whatever their key: the ones made by hand) and
by its key (wherever Kingdee dates it, if anywhere); keys found among the dated bills are not asked
for again. Rows are one per entry
row (the query names entry fields), deduplicated by bill and entry id; a reference is read by its
number (``FMaterialID.FNumber``), a date as its day.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from erpsync.connectors import BillQuery

if TYPE_CHECKING:
    from erpsync.kingdee.save import KingdeeWriter


def _key(field: str, references: frozenset[str]) -> str:
    return f"{field}.FNumber" if field in references else field


def _cell(value: Any, is_date: bool) -> Any:
    if value is None:
        return None
    if is_date:
        return str(value)[:10] or None  # "2026-11-01T10:00:00" -> its day
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return str(value)


def read_bills(client: KingdeeWriter, query: BillQuery) -> list[dict[str, Any]]:
    """The rows ``query`` asks for (see :class:`BillQuery`)."""
    names = {**query.header, **query.lines}
    entry_id = f"{query.entry}_FEntryID"  # the entry row's id (spec §4.3: <entry entity>_FEntryID)
    fields = ["FID", "FBillNo", query.key, entry_id, *(_key(f, query.references) for f in names.values())]
    day = _day(query.start)
    end = _day(query.end)
    by_date = (
        client.execute_bill_query(query.form, fields, f"{query.date} >= '{day}' AND {query.date} < '{end}'", "FID")
        if query.dated
        else []
    )
    dated = {str(row[2]) for row in by_date if row[2] is not None}
    unseen = [k for k in query.keys if k not in dated]
    by_key = client.query_in(query.form, query.key, unseen, fields) if unseen else []
    rows: dict[tuple[Any, Any], dict[str, Any]] = {}
    for raw in [*by_date, *by_key]:
        bill_id, bill_no, key, entry, *values = raw
        row = {"bill_id": str(bill_id), "bill_no": _cell(bill_no, False), "key": _cell(key, False)}
        for (name, field), value in zip(names.items(), values, strict=True):
            row[name] = _cell(value, field == query.date)
        rows.setdefault((bill_id, entry), row)
    return list(rows.values())


def _day(value: date) -> str:
    return value.isoformat()
