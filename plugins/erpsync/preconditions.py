"""Preconditions (前置条件): another scheme must have loaded the time a window covers, first.

A master-data scheme (materials, customers) has to have reached Kingdee before the sales bills that
name them. Matching the upstream DAG's run by logical date cannot express that: a run over a window
given by params has no upstream run of the same date, and schedules may differ (daily materials,
hourly sales). So the condition is on time itself: the upstream scheme's completed windows must cover
this run's window ``[start, end)``. A window is complete when its load task finishes without an
order left outside Kingdee (or with ``on_problem: warn``); it then writes ``complete.json`` in its
staging folder. Runs narrowed by filters never count: they did not read everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pendulum
from airflow.sdk import BaseSensorOperator

from erpsync.staging import COMPLETE, RunFiles, StoragePath, window_folders, write_json
from erpsync.windows import SHANGHAI, Window


def mark_complete(files: RunFiles, counts: dict[str, Any]) -> None:
    """Record that this window's orders are all in Kingdee (or accepted with warnings)."""
    write_json({"completed_at": pendulum.now(files.window.timezone).isoformat(), **counts}, files.complete)


def completed_windows(
    root: StoragePath,
    dag_id: str,
    overlapping: Window | None = None,
    timezone: str = SHANGHAI,
    marker: str = COMPLETE,
) -> list[Window]:
    """The whole windows of ``dag_id`` (a scheme in ``timezone``) under the staging root that are
    complete (not narrowed, not dry runs); with ``overlapping``, only those that overlap it (the others'
    markers are not even read). ``marker`` ``FINISHED``: those whose load ended, red or green."""
    return [
        f.window
        for f in window_folders(root, dag_id, timezone, overlapping=overlapping)
        if f.whole and (f.path / marker).exists()
    ]


def uncovered(window: Window, done: Iterable[Window]) -> list[Window]:
    """The parts of ``window`` that no window of ``done`` covers (empty: the condition holds)."""
    gaps, cursor = [], window.start
    for part in sorted(done, key=lambda w: w.start):
        if part.end <= cursor:
            continue
        if part.start >= window.end:
            break
        if part.start > cursor:
            gaps.append(Window(cursor, min(part.start, window.end)))
        cursor = max(cursor, part.end)
        if cursor >= window.end:
            break
    if cursor < window.end:
        gaps.append(Window(cursor, window.end))
    return gaps


class PreconditionSensor(BaseSensorOperator):
    """Waits until the upstream scheme's complete windows cover this run's window (rescheduling, so
    it holds no worker slot while it waits); says which stretch is still missing."""

    def __init__(
        self,
        *,
        upstream: str,
        upstream_timezone: str,
        root: Callable[[], StoragePath],
        window_of: Callable[[Any], Window],
        marker: str = COMPLETE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.upstream, self.upstream_timezone, self.root, self.window_of = upstream, upstream_timezone, root, window_of
        self.marker = marker

    def poke(self, context: Any) -> bool:
        window = self.window_of(context)
        done = completed_windows(
            self.root(), self.upstream, overlapping=window, timezone=self.upstream_timezone, marker=self.marker
        )
        gaps = uncovered(window, done)
        if gaps:
            self.log.info(
                "Waiting for %s: its loaded windows do not yet cover %s (missing %s)",
                self.upstream,
                window,
                ", ".join(map(str, gaps)),
            )
            return False
        self.log.info("Precondition met: %s has loaded all of %s", self.upstream, window)
        return True
