"""Load: BatchSave the window's bills in chunks, never creating a bill that already exists.

Before each chunk is saved its bill numbers are looked up in Kingdee; existing bills are recorded as
``existing`` with their id and not sent again. So a retried task, a cleared run or a backfill over
loaded windows adds nothing. A save answered with the duplicate-number error (another run saved the
bill in between) is looked up again and recorded as ``existing``. A bill Kingdee rejects is recorded
as ``rejected`` with every message Kingdee gave, each naming its field.

``load_report.parquet`` is rewritten after every chunk, so an interrupted load still leaves a true
record of what reached Kingdee.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import pendulum

from erpsync.staging import RunFiles, read_json, read_jsonl, write_parquet

log = logging.getLogger(__name__)

REPORT_COLUMNS = ["bill_no", "stockout_id", "order_no", "outcome", "kingdee_id", "kingdee_number", "field", "message", "at"]
_DUPLICATE = "违反字段唯一性要求"


class KingdeeWriter(Protocol):
    def find_bills(self, form_id: str, bill_nos: Iterable[str]) -> dict[str, tuple[int, str]]: ...
    def batch_save(self, form_id: str, data: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LoadResult:
    bills: int
    created: int
    existing: int
    rejected: int


def _row(bill: Mapping[str, Any], outcome: str, **values: Any) -> dict[str, Any]:
    return {
        "bill_no": bill["bill_no"],
        "stockout_id": bill.get("stockout_id"),
        "order_no": bill.get("order_no"),
        "outcome": outcome,
        "kingdee_id": values.get("kingdee_id"),
        "kingdee_number": values.get("kingdee_number"),
        "field": values.get("field"),
        "message": values.get("message"),
        "at": pendulum.now("Asia/Shanghai").isoformat(),
    }


def _outcomes(status: Mapping[str, Any], count: int) -> tuple[dict[int, tuple[int, str]], dict[int, list[tuple[str, str]]]]:
    """Saved (DIndex -> (FID, FBillNo)) and refused (DIndex -> [(field, message)]) bills of one call."""
    saved = {int(e["DIndex"]): (int(e["Id"]), str(e["Number"])) for e in status.get("SuccessEntitys") or []}
    refused: dict[int, list[tuple[str, str]]] = {}
    for error in status.get("Errors") or []:
        index = int(error.get("DIndex") or 0)
        if not 0 <= index < count:
            raise ValueError(f"Kingdee named bill index {index} of a batch of {count}: {error.get('Message')}")
        refused.setdefault(index, []).append((str(error.get("FieldName") or ""), str(error.get("Message") or "")))
    return saved, refused


def _save_chunk(client: KingdeeWriter, form_id: str, options: Mapping[str, Any], chunk: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    existing = client.find_bills(form_id, [b["bill_no"] for b in chunk])
    todo = []
    for bill in chunk:
        if bill["bill_no"] in existing:
            fid, number = existing[bill["bill_no"]]
            rows.append(_row(bill, "existing", kingdee_id=fid, kingdee_number=number))
        else:
            todo.append(bill)
    if not todo:
        return rows

    status = client.batch_save(form_id, {**options, "NeedReturnFields": ["FID", "FBillNo"], "Model": [b["model"] for b in todo]})
    saved, refused = _outcomes(status, len(todo))
    recheck = []
    for index, bill in enumerate(todo):
        if index in saved:
            fid, number = saved[index]
            rows.append(_row(bill, "created", kingdee_id=fid, kingdee_number=number))
        elif index in refused and any(_DUPLICATE in message for _, message in refused[index]):
            recheck.append(bill)
        elif index in refused:
            fields = "; ".join(dict.fromkeys(f for f, _ in refused[index] if f))
            messages = "; ".join(dict.fromkeys(m for _, m in refused[index]))
            rows.append(_row(bill, "rejected", field=fields or None, message=messages))
        else:  # neither saved nor refused: find out instead of guessing
            recheck.append(bill)
    if recheck:
        found = client.find_bills(form_id, [b["bill_no"] for b in recheck])
        for bill in recheck:
            if bill["bill_no"] in found:
                fid, number = found[bill["bill_no"]]
                rows.append(_row(bill, "existing", kingdee_id=fid, kingdee_number=number))
            else:
                rows.append(_row(bill, "rejected", message="Kingdee reported no outcome for this bill and does not have it"))
    return rows


def load(client: KingdeeWriter, files: RunFiles, chunk_size: int) -> LoadResult:
    bills = read_jsonl(files.bills)
    request = read_json(files.request)
    form_id, options = request["form_id"], request.get("options", {})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(bills), chunk_size):
        chunk = bills[start : start + chunk_size]
        rows.extend(_save_chunk(client, form_id, options, chunk))
        write_parquet(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), files.load_report)
        log.info("Loaded bills %d-%d of %d", start + 1, start + len(chunk), len(bills))
    if not bills:
        write_parquet(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), files.load_report)

    counts = pd.Series([r["outcome"] for r in rows], dtype="string").value_counts()
    for row in rows:
        if row["outcome"] == "rejected":
            log.warning("Kingdee rejected bill %s (stock-out id %s): %s", row["bill_no"], row["stockout_id"], row["message"])
    return LoadResult(
        bills=len(bills),
        created=int(counts.get("created", 0)),
        existing=int(counts.get("existing", 0)),
        rejected=int(counts.get("rejected", 0)),
    )
