"""What happened to each order of a window: the load report's rows, shared by the load step (which
writes the report) and the target connector (which decides each bill's outcome).

A row names the bill by its key (``bill_no``: the value of the scheme's ``target.bill_key``, e.g. the
stock-out number), the order it was built from, and what the target system has (``kingdee_id``,
``kingdee_number``: the record's id and its own number, which differs from the key when the target
numbers bills itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

REPORT_COLUMNS = [
    "bill_no",
    "order_id",
    "order_no",
    "outcome",
    "kingdee_id",
    "kingdee_number",
    "field",
    "message",
    "at",
]
OUTCOMES = ("created", "existing", "rejected", "held", "quarantined", "unmapped", "would_create")
PROBLEMS = ("rejected", "held", "quarantined", "unmapped")  # a valid order that is not in the target


@dataclass(frozen=True)
class Problem:
    """A valid order of the window that did not become a bill in the target."""

    order_id: str
    order_no: str
    outcome: str  # rejected | held | quarantined | unmapped
    reason: str


def report_row(bill: Mapping[str, Any], outcome: str, **values: Any) -> dict[str, Any]:
    """One row of the load report for ``bill`` (a bills.jsonl record, or an order without a bill)."""
    return {
        "bill_no": bill["bill_no"],
        "order_id": bill.get("order_id"),
        "order_no": bill.get("order_no"),
        "outcome": outcome,
        "kingdee_id": values.get("kingdee_id"),
        "kingdee_number": values.get("kingdee_number"),
        "field": values.get("field"),
        "message": values.get("message"),
        "at": pendulum.now("UTC").isoformat(),
    }
