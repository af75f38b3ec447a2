"""Each run of a scheme's DAG shows its window as the run's note, whoever started it.

Airflow names runs by a UTC time (``backfill__2026-11-02T16:00:00+00:00`` is the Shanghai day
2026-11-02 … 11-03, named by its end), and a run triggered with ``window_start``/``window_end`` has no
data interval at all, so neither the runs list nor the run page said which orders a run moved. The
scheduler calls this listener (registered by ``plugins/erpsync_ui.py``) as it starts a run; the note
it sets is the window the run's tasks will resolve (``erpsync.windows.resolve_window``), e.g.
``window [2026-11-02 00:00:00, 2026-11-03 00:00:00) Asia/Shanghai`` (the scheme's zone). A note the user wrote when
triggering is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from erpsync.windows import SHANGHAI, Window, WindowError, resolve_window

log = logging.getLogger(__name__)


def run_window(dag: Any, dag_run: Any) -> Window | None:
    """The window of a run of an erpsync DAG (one with window params and a cron timetable), else None."""
    params = getattr(dag, "params", None) or {}
    if "window_start" not in params or "window_end" not in params:
        return None
    schedule = dag.timetable.serialize()
    if "expression" not in schedule:
        return None
    conf = dag_run.conf or {}
    try:
        return resolve_window(
            window_start=conf.get("window_start"),
            window_end=conf.get("window_end"),
            data_interval_start=dag_run.data_interval_start,
            data_interval_end=dag_run.data_interval_end,
            run_after=dag_run.run_after,
            cron=schedule["expression"],
            timezone=schedule.get("timezone") or SHANGHAI,
        )
    except WindowError:
        return None  # the run fails in its first task, which says why


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    dag = getattr(dag_run, "dag", None)
    if dag is None or dag_run.note:
        return
    window = run_window(dag, dag_run)
    if window is not None:
        dag_run.note = f"window {window}"  # saved with the scheduler's change of the run's state
