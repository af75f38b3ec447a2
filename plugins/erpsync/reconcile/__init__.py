"""Reconciliation (对账): does the target hold exactly what the source says it should, per business day?

For each day (in the scheme's zone) the documents the source has in their final status on that day
(``sides.read_documents``, through the scheme's source connector) are made into the bills they should
be by the scheme's own mapping, and compared with the bills of the scheme's form the target holds now
(``sides.read_bills``, through the target connector: by bill key and by date, every page). What differs
is listed by kind (``compare``) and stored per day under the staging root (``store``). A re-push saves
the missing bills that are loadable now (held for base data or a required bill, or rejected) through
the target connector's exactly-once save, as the load step does.

Nothing here knows WDT or Kingdee: the steps' connectors and the scheme's definitions say what differs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pendulum

from erpsync.connectors import Reader, Writer
from erpsync.mapping.compile import BillMapping, compile_mapping
from erpsync.outcomes import REPORT_COLUMNS
from erpsync.reconcile.compare import DayResult, compare_day
from erpsync.reconcile.sides import (
    Doc,
    ReconcileError,
    days_window,
    known_outcomes,
    read_bills,
    read_documents,
    source_reading,
)
from erpsync.reconcile.store import day_folder, write_day
from erpsync.scheme import Scheme, Source
from erpsync.staging import StoragePath, append_part, remove_tree

__all__ = ["DayResult", "ReconcileError", "Reconciled", "days_before", "reconcile", "repush"]

log = logging.getLogger(__name__)

OpenReader = Callable[[Source], AbstractContextManager[Reader]]
LOADABLE = ("held", "rejected")  # missing for a reason the target side may have fixed since (and deleted bills)


@dataclass(frozen=True)
class Reconciled:
    results: list[DayResult]
    docs: list[Doc]  # the documents of the days, with the bills they should be


def days_before(last: date, count: int) -> list[date]:
    """``count`` days ending with ``last``, oldest first."""
    return [last - timedelta(days=n) for n in range(count - 1, -1, -1)]


def reconcile(
    scheme: Scheme,
    days: Sequence[date],
    root: StoragePath,
    open_reader: OpenReader,
    writer: Writer,
    *,
    now: pendulum.DateTime | None = None,
    mapping: BillMapping | None = None,
    store: bool = True,
) -> Reconciled:
    """Reconcile ``days`` of ``scheme``: one result per day, stored under ``root`` unless ``store`` is off."""
    if not days:
        raise ReconcileError("no day to reconcile")
    days = sorted(set(days))
    mapping = mapping or compile_mapping(scheme)
    now = now or pendulum.now("UTC")
    source, window = source_reading(scheme, days, now)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile-target") as pool:
        # the target's bills of the days are read while the source is (its reads wait on its call limit)
        dated = pool.submit(read_bills, scheme, writer, days, [])
        with open_reader(source) as reader:
            docs, keys_read = read_documents(scheme, mapping, reader, window, days)
        bills = dated.result()
    found = {b.key for b in bills}
    unseen = {d.key for d in docs if d.key and d.key not in found}  # dated elsewhere, or not in the target
    bills += read_bills(scheme, writer, days, unseen, dated=False) if unseen else []
    known = known_outcomes(root, scheme, days_window(days, scheme.settings.timezone).start)
    results = []
    for day in days:
        result = compare_day(day.isoformat(), scheme.name, scheme.dag_id, docs, bills, keys_read, known)
        if store:
            write_day(root, result)
        log.info("%s %s: %s", scheme.dag_id, day, ", ".join(f"{n} {k}" for k, n in result.counts.items()))
        results.append(result)
    return Reconciled(results, docs)


def _bill_of(doc: Doc | None) -> dict[str, Any] | None:
    return doc.bill if doc is not None else None


def repush(scheme: Scheme, reconciled: Reconciled, root: StoragePath, writer: Writer) -> dict[str, int]:
    """Save what the reconciliation found missing and loadable now through the writer's exactly-once
    save: the bills held (base data, a required bill) or rejected, and the bills deleted from the target
    since they were loaded (documents quarantined, unmapped or not read yet wait for their window's
    rerun: they have not passed the suites). Each day's report goes to its folder's ``repush/``.
    Returns the count of each outcome."""
    import pandas as pd

    from erpsync.steps.transform import save_request

    by_order = {d.order_id: d for d in reconciled.docs}
    request = save_request(scheme, compile_mapping(scheme))
    counts: dict[str, int] = {}
    for result in reconciled.results:
        loadable = [m for m in result.of_kind("missing") if m["reason"] in LOADABLE] + result.of_kind("deleted")
        bills = [bill for m in loadable if (bill := _bill_of(by_order.get(m["order_id"]))) is not None]
        if not bills:
            continue
        folder = day_folder(root, scheme.dag_id, result.day) / "repush"
        remove_tree(folder)

        def record(index: int, rows: list[dict[str, Any]], folder: StoragePath = folder) -> None:
            append_part(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), folder, index)
            for row in rows:
                counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1

        log.info("Re-pushing %d missing bills of %s", len(bills), result.day)
        writer.save(bills, request, scheme.settings.load, record)
    return counts
