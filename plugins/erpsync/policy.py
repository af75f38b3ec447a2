"""What the end of a window's load means for the run: red or green, alerts, the completion marker.

One function, called by the load task after the target connector decided every bill (not a task of
its own: each task costs a second of start-up):

- a window with an order that did not reach the target (rejected, held, quarantined, unmapped) is
  red with ``on_problem: fail`` (:class:`WindowIncomplete`; the task log lists every such order and
  why), or green with warnings and an alert to the scheme's robots with ``on_problem: warn``;
- a dry run only shows what would happen: it is never red, alerts nobody and completes nothing;
- a whole window (no filters) that is done writes ``complete.json``, which other schemes'
  preconditions (前置条件) wait for. A narrowed run did not read everything, so it never completes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from erpsync.run import Run
from erpsync.steps.load import LoadResult, summary, window_problems

log = logging.getLogger(__name__)


class WindowIncomplete(RuntimeError):
    """Orders of the window did not reach the target and the scheme says ``on_problem: fail``."""


def finish_window(run: Run, result: LoadResult) -> dict[str, Any]:
    """Decide the window's end (see the module docstring); returns the counts for XCom."""
    from erpsync.alerts import notify_problems
    from erpsync.preconditions import mark_complete

    settings = run.scheme.settings
    problems = window_problems(run.files)
    text = summary(str(run.window), result, problems, run.dry_run)
    counts = {**asdict(result), "problems": len(problems)}
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
