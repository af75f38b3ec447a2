"""Load: the window's bills into the target, each exactly once, and the window's report.

The target connector (``erpsync.connectors``; for Kingdee :mod:`erpsync.kingdee.save`) decides each
bill: ``created``, ``existing`` (already there: not sent again), ``rejected`` (refused, with the field
and message), ``held`` (names base data the target lacks), ``would_create`` (a dry run). This step
gives it the bills and ``request.json`` that the transform wrote, and writes what it decides:

The report ``load_report/`` gets one Parquet part per chunk as it finishes, so an interrupted load
leaves a true record of what reached the target and a long backfill never rewrites what it wrote. A
last part lists the orders held back upstream (``quarantined``, ``unmapped``), so the report has every
order of the window. What that means for the run (red, alerts, completion) is decided by
:func:`erpsync.policy.finish_window`.

The window's key file (:mod:`erpsync.keys`: each order's numbers and outcome, what the order search
and the report pages read) is removed as the load begins and written again from the complete report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from erpsync.calls import write_calls
from erpsync.connectors import Writer
from erpsync.keys import drop_keys, record_keys
from erpsync.outcomes import OUTCOMES, PROBLEMS, REPORT_COLUMNS, Problem, report_row
from erpsync.run import Run
from erpsync.staging import RunFiles, append_part, read_json, read_jsonl, read_parquet, read_parts, remove_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    bills: int
    created: int
    existing: int
    rejected: int
    held: int  # not sent: a base-data number the target does not have
    quarantined: int  # orders held back upstream, listed in the report too
    unmapped: int
    would_create: int = 0  # a dry run: bills not in the target, not sent


def load(run: Run, writer: Writer) -> LoadResult:
    """Load the run's bills (a dry run: look up and report only, send nothing)."""
    try:
        return _load(run, writer)
    finally:  # failed attempts' calls count in the API catalog too
        write_calls(writer.recorder, run.files, "load")


def _load(run: Run, writer: Writer) -> LoadResult:
    import pandas as pd

    files = run.files
    bills = read_jsonl(files.bills)
    drop_keys(files.dir)  # the key file says what the report says: none while it is rewritten
    remove_tree(files.load_report)  # this attempt's report: created now, or existing
    counts = dict.fromkeys(OUTCOMES, 0)

    def record(index: int, rows: list[dict[str, Any]]) -> None:
        append_part(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), files.load_report, index)
        for row in rows:
            counts[row["outcome"]] += 1
        done = sum(counts.values()) - counts["quarantined"] - counts["unmapped"]
        log.info("Part %d: %d bills; %d of %d bills decided", index + 1, len(rows), done, len(bills))

    parts = writer.save(bills, read_json(files.request), run.scheme.settings.load, record, run.dry_run)
    upstream = _upstream_rows(files)
    if upstream:
        record(parts, upstream)
    try:
        record_keys(files, run.scheme.source.api)
    except Exception:  # the bills are in; without its key file the window is read from its wide files
        log.warning("Could not write the key file of %s", files.dir.name, exc_info=True)
    return LoadResult(bills=len(bills), **counts)


def read_report(files: RunFiles):  # -> pd.DataFrame
    return read_parts(files.load_report, REPORT_COLUMNS)


def given(value: Any) -> bool:
    """Whether a report cell holds a value (not None, NaN or pandas' NA, whose truth is ambiguous)."""
    try:
        return value is not None and bool(value == value) and str(value) not in ("", "<NA>")
    except TypeError:  # pd.NA == pd.NA is NA
        return False


def _upstream_rows(files: RunFiles) -> list[dict[str, Any]]:
    """The orders validate quarantined and transform could not map: no bill was built for them."""
    rows: list[dict[str, Any]] = []
    if files.quarantine.exists():
        for order_id, rules in read_parquet(files.quarantine).groupby("order_id", sort=False):
            reasons = "; ".join(
                dict.fromkeys(
                    f"{r.column}={r.value!r} breaks '{r.check}'" + (f" (line {r.line_id})" if given(r.line_id) else "")
                    for r in rules.itertuples()
                )
            )
            order = {"bill_no": None, "order_id": order_id, "order_no": rules["order_no"].iloc[0]}
            rows.append(
                report_row(order, "quarantined", field="; ".join(dict.fromkeys(rules["column"])), message=reasons)
            )
    if files.unmapped.exists():
        for u in read_parquet(files.unmapped).itertuples():
            order = {"bill_no": None, "order_id": u.order_id, "order_no": u.order_no}
            rows.append(report_row(order, "unmapped", field=u.field, message=u.message))
    return rows


def window_problems(files: RunFiles) -> list[Problem]:
    """Every valid order of the window that is not in Kingdee, with the reason, from the load report."""
    report = read_report(files)
    return [
        Problem(
            str(r.order_id),
            str(r.order_no),
            r.outcome,
            f"[{r.field if given(r.field) else '-'}] {r.message}" if r.outcome == "rejected" else str(r.message),
        )
        for r in report[report["outcome"].isin(PROBLEMS)].itertuples()
    ]


def summary(window: str, result: LoadResult, problems: Sequence[Problem], dry_run: bool = False) -> str:
    """The task-log summary of a window: counts, then every order that did not reach Kingdee and why."""
    done = f"DRY RUN, nothing sent: {result.would_create} would be created" if dry_run else f"{result.created} created"
    lines = [
        f"Window {window}: {result.bills} bills: {done}, {result.existing} already in Kingdee, "
        f"{result.rejected} rejected, {result.held} held back (base data Kingdee lacks); {result.quarantined} orders "
        f"quarantined, {result.unmapped} unmapped."
    ]
    if problems:
        lines.append(f"{len(problems)} orders did not reach Kingdee:")
        lines += [f"  {p.outcome:<11} {p.order_no} (id {p.order_id}): {p.reason}" for p in problems]
    return "\n".join(lines)
