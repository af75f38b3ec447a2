"""What the end of a window's load means for the run: red or green, alerts, the completion marker.

One function, called by the load task after the target connector decided every bill (not a task of
its own: each task costs a second of start-up):

- a window with an order that did not reach the target (rejected, held, quarantined, unmapped) is
  red with ``on_problem: fail`` (:class:`WindowIncomplete`; the task log lists every such order and
  why), or green with warnings and an alert to the scheme's robots with ``on_problem: warn``;
- a dry run only shows what would happen: it is never red, alerts nobody and completes nothing;
- a whole window (no filters) that is done writes ``complete.json``, which other schemes'
  preconditions (前置条件) wait for. A narrowed run did not read everything, so it never completes.

One problem, one red window, one alert: an order whose problem another whole window has already
reported (it read the order first; this one reads it again through its look-back, or overlaps it) is a
*known* problem here: listed in the log as known, kept in this window's report, but it neither turns
this window red nor alerts again. Each whole window's ``finished.json`` says which problems it reported
itself (and which it found known), whether it ended red or green; windows overlapping this one's read
``[start - lookback, end)`` are asked. A rerun of the window that reported it first is red again until
the problem is fixed; the reconciliation lists it until then too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import pendulum

from erpsync.run import Run
from erpsync.staging import FINISHED, read_json, window_folders, write_json
from erpsync.steps.load import LoadResult, summary, window_problems
from erpsync.windows import Window

log = logging.getLogger(__name__)


class WindowIncomplete(RuntimeError):
    """Orders of the window did not reach the target and the scheme says ``on_problem: fail``."""


def known_problems(run: Run, order_ids: set[str]) -> set[str]:
    """The orders of ``order_ids`` whose problem another whole window, overlapping this one's read,
    reported first."""
    if not order_ids:
        return set()
    lookback = run.scheme.source.lookback
    read = Window(run.window.start - lookback, run.window.end + lookback)
    dag_folder = run.files.dir.parent
    known: set[str] = set()
    for folder in window_folders(dag_folder.parent, dag_folder.name, run.window.timezone, overlapping=read):
        if folder.name == run.files.dir.name or not folder.whole:
            continue
        if (folder.path / FINISHED).exists():
            known |= order_ids & set(read_json(folder.path / FINISHED).get("reported", []))
    return known


def finish_window(run: Run, result: LoadResult) -> dict[str, Any]:
    """Decide the window's end (see the module docstring); returns the counts for XCom."""
    from erpsync.alerts import notify_problems
    from erpsync.preconditions import mark_complete

    settings = run.scheme.settings
    found = window_problems(run.files)
    known = known_problems(run, {p.order_id for p in found}) if run.whole else set()
    problems = [p for p in found if p.order_id not in known]
    text = summary(str(run.window), result, problems, run.dry_run)
    if known:
        text += f"\n{len(known)} known problems, reported by an earlier window: " + ", ".join(
            p.order_no for p in found if p.order_id in known
        )
    counts = {**asdict(result), "problems": len(problems), "known_problems": len(known)}
    if run.whole:
        write_json(
            {
                "finished_at": pendulum.now("UTC").isoformat(),
                "reported": sorted({p.order_id for p in problems}),
                "known": sorted(known),
            },
            run.files.finished,
        )
    if problems and not run.dry_run and settings.load.on_problem == "fail":
        log.error("%s\nEverything else is loaded. Fix the data or the target, then clear this task.", text)
        raise WindowIncomplete(f"{len(problems)} orders of this window did not reach the target (listed above)")
    (log.warning if problems else log.info)(text)
    if run.dry_run:
        return counts
    if problems and settings.alerts:  # on_problem: warn: the run stays green, orders are missing
        notify_problems(
            settings.alerts,
            dag_id=run.scheme.dag_id,
            run_id=run.run_id,
            window=run.window,
            counts=counts,
            problems=problems,
        )
    if not run.filters:
        mark_complete(run.files, counts)
    return counts
