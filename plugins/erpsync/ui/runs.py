"""Which window a DAG run covered, read in the api-server from Airflow's metadata database.

1. **The run's own word**: its extract task returns the manifest (``window``, ``filters``) as XCom.
   When it is there, that is the window the run staged, whatever the scheme says today.
2. **Otherwise, the same resolution the tasks do** (``erpsync.windows.resolve_window``): the run's
   ``conf`` (``window_start``/``window_end``, ``filters``), else its data interval, else the last
   schedule interval before ``run_after``. This covers a run whose extract has not finished (or
   failed, or whose XCom was cleared), and an XCom backend that keeps only a reference in the DB.

Both go through the same folder naming as ``RunFiles``; the page then says whether that folder
exists (not yet written, or pruned by retention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from erpsync.scheme import Scheme, SchemeError
from erpsync.staging import window_folder
from erpsync.windows import Window, WindowError, resolve_window

EXTRACT = "extract"  # the task whose XCom carries the manifest first


@dataclass(frozen=True)
class RunWindow:
    run_id: str
    state: str | None
    run_type: str | None
    started: datetime | None
    ended: datetime | None
    window: Window | None
    filters: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    source: str = ""  # "xcom": the extract task's manifest; "run": resolved from conf / data interval
    problem: str | None = None  # why no window could be named

    @property
    def folder_name(self) -> str | None:
        """The window folder, as ``RunFiles`` names it."""
        return None if self.window is None else window_folder(self.window, self.filters, self.dry_run)


def _manifests(session: Any, dag_id: str, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """run_id -> {"window": …, "filters": …} from the extract task's XCom (its return value, or the
    keys TaskFlow unrolls a returned dict into)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not run_ids:
        return {}
    query = select(XComModel.run_id, XComModel.key, XComModel.value).where(
        XComModel.dag_id == dag_id,
        XComModel.run_id.in_(list(run_ids)),
        XComModel.task_id == EXTRACT,
        XComModel.map_index == -1,
        XComModel.key.in_(("return_value", "window", "filters", "dry_run")),
    )
    found: dict[str, dict[str, Any]] = {}
    for row in session.execute(query):
        try:
            value = XComModel.deserialize_value(row)
        except Exception:  # a custom backend's reference, or a value we cannot read: resolve instead
            continue
        manifest = found.setdefault(row.run_id, {})
        if row.key == "return_value" and isinstance(value, dict):
            manifest.update({k: value[k] for k in ("window", "filters", "dry_run") if k in value})
        elif row.key in ("window", "filters", "dry_run"):
            manifest.setdefault(row.key, value)
    return found


def _from_manifest(manifest: dict[str, Any]) -> tuple[Window, dict[str, str]] | None:
    window = manifest.get("window")
    filters = manifest.get("filters") or {}
    if not isinstance(window, dict) or not isinstance(filters, dict):
        return None
    try:
        return Window.from_dict(window), {str(k): str(v) for k, v in filters.items()}
    except (KeyError, WindowError):
        return None


def _resolve(dag_run: Any, scheme: Scheme | None) -> tuple[Window | None, dict[str, str], str | None]:
    """The window as the run's tasks resolve it (see ``dag_factory.run_window``)."""
    if scheme is None:
        return None, {}, "no scheme defines this DAG any more, and the run left no manifest"
    conf = dag_run.conf if isinstance(dag_run.conf, dict) else {}
    try:
        window = resolve_window(
            window_start=conf.get("window_start"),
            window_end=conf.get("window_end"),
            data_interval_start=dag_run.data_interval_start,
            data_interval_end=dag_run.data_interval_end,
            run_after=dag_run.run_after,
            cron=scheme.settings.cron,
            timezone=scheme.settings.timezone,
        )
        filters = scheme.source.check_filters(conf.get("filters") or {})
    except (WindowError, SchemeError) as exc:
        return None, {}, f"the run's parameters name no window: {exc}"
    return window, filters, None


def _run_window(dag_run: Any, manifest: dict[str, Any] | None, scheme: Scheme | None) -> RunWindow:
    common = {
        "run_id": dag_run.run_id,
        "state": str(dag_run.state) if dag_run.state is not None else None,
        "run_type": str(dag_run.run_type) if dag_run.run_type is not None else None,
        "started": dag_run.start_date,
        "ended": dag_run.end_date,
    }
    recorded = _from_manifest(manifest) if manifest else None
    if manifest and recorded is not None:
        return RunWindow(
            **common, window=recorded[0], filters=recorded[1], dry_run=bool(manifest.get("dry_run")), source="xcom"
        )
    window, filters, problem = _resolve(dag_run, scheme)
    conf = dag_run.conf if isinstance(dag_run.conf, dict) else {}
    return RunWindow(
        **common,
        window=window,
        filters=filters,
        dry_run=bool(conf.get("dry_run")),
        source="run" if window else "",
        problem=problem,
    )


def run_window(session: Any, dag_id: str, run_id: str, scheme: Scheme | None) -> RunWindow | None:
    """The window of run ``run_id`` of ``dag_id``; None if Airflow has no such run."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if dag_run is None:
        return None
    return _run_window(dag_run, _manifests(session, dag_id, [run_id]).get(run_id), scheme)


def recent_runs(session: Any, dag_id: str, scheme: Scheme | None, limit: int = 25) -> list[RunWindow]:
    """The latest runs of ``dag_id`` (by run_after), each with its window."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    runs = list(
        session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(limit))
    )
    manifests = _manifests(session, dag_id, [r.run_id for r in runs])
    return [_run_window(r, manifests.get(r.run_id), scheme) for r in runs]


def task_durations(session: Any, dag_ids: Sequence[str], task_id: str, since: datetime) -> list[float]:
    """Seconds of the finished ``task_id`` tries of these DAGs that ended after ``since`` (failed ones too:
    a load that ends red because an order was rejected did all its work)."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    if not dag_ids:
        return []
    query = select(TaskInstance.duration).where(
        TaskInstance.dag_id.in_(list(dag_ids)),
        TaskInstance.task_id == task_id,
        TaskInstance.state.in_(("success", "failed")),
        TaskInstance.end_date >= since,
        TaskInstance.duration.is_not(None),
    )
    return [float(d) for d in session.scalars(query)]
