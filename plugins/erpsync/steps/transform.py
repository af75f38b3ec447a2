"""Transform: one Kingdee Model per valid stock-out, from the scheme's compiled mapping.

pandas joins the staged orders with their lines, drops quarantined stock-outs and orders each bill's
lines by WDT's line id; the compiled mapping then builds each Model. An order the mapping cannot
build (a value that is not a number, a missing bill number…) is listed in ``unmapped.parquet`` with
the field and the reason, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from erpsync.mapping.compile import BillMapping, MappingError
from erpsync.staging import RunFiles, read_parquet, write_json, write_jsonl, write_parquet

log = logging.getLogger(__name__)

UNMAPPED_COLUMNS = ["stockout_id", "order_no", "field", "message"]


@dataclass(frozen=True)
class TransformResult:
    bills: int
    unmapped: int
    skipped_quarantined: int


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _line_order(lines: pd.DataFrame, line_key: str) -> pd.DataFrame:
    """Lines in WDT's line-id order (numeric where the ids are numbers), stable otherwise."""
    numeric = pd.to_numeric(lines[line_key], errors="coerce")
    return lines.assign(_sort=numeric).sort_values(["_sort", line_key], kind="stable").drop(columns="_sort")


def transform(
    mapping: BillMapping, files: RunFiles, order_key: str, line_key: str, now: datetime | None = None
) -> TransformResult:
    """Build the window's bills; ``now`` (the window end) is what NOW()/CURDATE() give in the mapping."""
    orders = read_parquet(files.orders)
    lines = read_parquet(files.lines)
    quarantine = read_parquet(files.quarantine)

    quarantined = set(quarantine["stockout_id"].dropna())
    keep = orders[order_key].notna() & ~orders[order_key].isin(quarantined)
    valid = orders[keep]
    lines_by_order: dict[str, list[dict[str, Any]]] = {}
    # one conversion of the whole frame: per-group pandas work would cost milliseconds per order
    for line in _records(_line_order(lines[lines[order_key].isin(valid[order_key])], line_key)):
        lines_by_order.setdefault(str(line[order_key]), []).append(line)

    bills: list[dict[str, Any]] = []
    unmapped: list[dict[str, Any]] = []
    for order in _records(valid):
        stockout_id = str(order[order_key])
        try:
            bill = mapping.build(order, lines_by_order.get(stockout_id, []), now)
        except MappingError as exc:
            unmapped.append(
                {"stockout_id": stockout_id, "order_no": order.get("order_no"), "field": exc.field, "message": exc.message}
            )
            log.warning("Stock-out %s (id %s) cannot be mapped: %s", order.get("order_no"), stockout_id, exc)
            continue
        bills.append({"bill_no": bill.bill_no, "stockout_id": stockout_id, "order_no": order.get("order_no"), "model": bill.model})

    write_jsonl(bills, files.bills)
    write_parquet(pd.DataFrame(unmapped, columns=UNMAPPED_COLUMNS).astype("string"), files.unmapped)
    request = mapping.request
    write_json({"form_id": request.form_id, "service": request.service, "options": dict(request.options),
                "base_data": dict(request.base_data)}, files.request)
    skipped = int((~keep).sum())
    log.info("Built %d bills; %d orders unmapped, %d quarantined", len(bills), len(unmapped), skipped)
    return TransformResult(bills=len(bills), unmapped=len(unmapped), skipped_quarantined=skipped)
