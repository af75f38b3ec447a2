"""The API catalog: the definitions in ``include/apis/`` with their Chinese labels, and what recent
windows say about each API (calls, errors, latency, rows moved).

What is measured where:

* ``extract_summary.json`` (per window): WDT calls, pages, retries (transient faults retried),
  throttled seconds, seconds of the whole extract, orders and lines read.
* ``load_report/`` (per window): every order's Kingdee outcome with Kingdee's field and message.
* Airflow's task instances: how long each successful extract and load task ran.
* ``calls/*.parquet`` (per window, when extract/load write it): one row per HTTP call with
  ``system, method, started, ms, outcome, detail, rows``. Only this gives true per-call latency;
  until it exists the page shows the per-window estimates above, labelled as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from erpsync.scheme import Scheme, SchemeError, TargetFormFile, load_source_api, load_target_form, read_model
from erpsync.staging import KEY_TIME, NAME_END, WindowFolder
from erpsync.ui.reports import report_parts
from erpsync.ui.staged import Duck, Staging


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return data[low] + (data[high] - data[low]) * (position - low)


@dataclass
class SourceDoc:
    path: Path
    method: str
    label: str
    keys: dict[str, str]
    limits: dict[str, Any]
    request: list[dict[str, Any]]
    order_fields: list[dict[str, str]]
    line_fields: list[dict[str, str]]
    used_by: list[str] = field(default_factory=list)


@dataclass
class FormDoc:
    path: Path
    form_id: str
    label: str
    entities: list[dict[str, str]]
    fields: list[dict[str, Any]]
    options: list[dict[str, Any]]
    used_by: list[str] = field(default_factory=list)


@dataclass
class Catalog:
    sources: list[SourceDoc]
    forms: list[FormDoc]
    problems: list[str]


def catalog(include_dir: Path, schemes: Sequence[Scheme]) -> Catalog:
    """Every definition file of ``include_dir/apis``, with the schemes that use it."""
    sources, forms, problems = [], [], []
    for path in sorted((include_dir / "apis").glob("*.yaml")):
        try:
            if path.name.startswith("kingdee."):
                forms.append(_form(path, schemes))
            else:
                sources.append(_source(path, schemes))
        except SchemeError as exc:
            problems.append(str(exc))
    return Catalog(sources, forms, problems)


def _source(path: Path, schemes: Sequence[Scheme]) -> SourceDoc:
    api = load_source_api(path)
    users = [s for s in schemes if s.source.api.method == api.method]
    request = []
    for name, spec in api.request.items():
        settings = [(s.dag_id, p) for s in users for p in s.source.request if p.field == name]
        request.append(
            {
                "name": name,
                "label": spec.label,
                "type": spec.type,
                "set_by": [f"{dag}: {p.value}" for dag, p in settings if p.value.strip()],
                "filter": any(name in s.source.filter_fields for s in users),
            }
        )
    return SourceDoc(
        path=path,
        method=api.method,
        label=api.label,
        keys={
            "order_key": api.order_key,
            "number_key": api.number_key,
            "line_key": api.line_key,
            "number_param": api.number_param,
            "list_key": api.list_key,
            "line_list_key": api.line_list_key,
        },
        limits={
            "max_window_days": api.max_window_days,
            "max_page_size": api.max_page_size,
            "window_inclusive_end": api.window_inclusive_end,
        },
        request=request,
        order_fields=[{"name": n, "label": f.label, "type": f.type} for n, f in api.order_fields.items()],
        line_fields=[{"name": n, "label": f.label, "type": f.type} for n, f in api.line_fields.items()],
        used_by=[s.dag_id for s in users],
    )


def _form(path: Path, schemes: Sequence[Scheme]) -> FormDoc:
    form = load_target_form(path)
    definition, _ = read_model(path, TargetFormFile)
    labels = {"header": "单据头", **{k: e.label for k, e in definition.entities.items()}}
    users = [s for s in schemes if s.target.form.form_id == form.form_id]
    mapped: dict[str, list[str]] = defaultdict(list)  # lower-cased field key -> "dag: value"
    for scheme in users:
        for row in scheme.target.mapping:
            if row.value.strip():  # an empty value sends nothing
                mapped[row.field.split(".")[-1].lower()].append(f"{scheme.dag_id}: {row.value}")
    fields = [
        {
            "entity": f.entity,
            "entity_label": labels.get(f.entity, ""),
            "key": f.key,
            "label": f.label,
            "kind": f.kind,
            "lookup": f.lookup if f.kind == "basedata" else "",
            "form": f.form,
            "mapped": mapped.get(f.key.lower(), []),
        }
        for f in form.fields.values()
    ]
    return FormDoc(
        path=path,
        form_id=form.form_id,
        label=form.label,
        entities=[{"key": k, "kind": v, "label": labels.get(k, "")} for k, v in form.entities.items()],
        fields=fields,
        options=[
            {"name": n, "kind": o.kind, "values": list(o.values), "mapped": mapped.get(n.lower(), [])}
            for n, o in form.request_options.items()
        ],
        used_by=[s.dag_id for s in users],
    )


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class SourceFigures:
    windows: int = 0
    without_summary: int = 0  # windows whose extract did not finish (failed, running, or pruned)
    calls: int = 0
    pages: int = 0
    retries: int = 0
    throttled_seconds: float = 0.0
    orders: int = 0
    lines: int = 0
    per_call_ms: list[float] = field(default_factory=list)  # per window: extract seconds / calls (estimate)
    task_seconds: list[float] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)  # calls/*.parquet, per method
    recorded_errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FormFigures:
    windows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)  # rejected/held: field, message, count
    task_seconds: list[float] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    recorded_errors: list[dict[str, Any]] = field(default_factory=list)


def _recent(staging: Staging, dag_ids: Sequence[str], since: datetime) -> dict[str, list[WindowFolder]]:
    """The window folders of each DAG that ended at or after ``since``; only names that can be are
    parsed (a year of hourly windows is 8,760 folders a DAG)."""
    import pendulum

    found = {}
    for dag_id in dag_ids:
        # wall-clock keys sort as instants within a zone's offset changes: a day's margin
        low = (pendulum.instance(since).in_timezone(staging.zone(dag_id)) - timedelta(days=1)).strftime(KEY_TIME)
        names = [n for n in staging.names(dag_id) if n[NAME_END] >= low]
        found[dag_id] = [f for f in staging.folders(dag_id, names) if f.window.end >= since]
    return found


def _recorded(
    staging: Staging, duck: Duck, windows: dict[str, list[WindowFolder]], system: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-method figures and errors by kind from ``calls/*.parquet`` of these windows (only theirs
    are read: a glob over every window would open a year of them)."""
    stats: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for dag_id, folders in windows.items():
        files = [
            f"{dag_id}/{f.name}/calls/{n}"
            for f in folders
            for n in sorted(staging.listdir(f"{dag_id}/{f.name}/calls"))
            if n.endswith(".parquet") and not n.startswith(".")
        ]
        if not files:
            continue
        # the source's and the form's figures ask of the same files: read once
        table = duck.table(duck.parquet(files), 'system, method, ms, outcome, detail, "rows"')
        stats += duck.rows(
            f"""
            select method, count(*) as calls, count(*) filter (where outcome <> 'ok') as errors,
                   quantile_cont(try_cast(ms as double), 0.5) as p50, quantile_cont(try_cast(ms as double), 0.95) as p95,
                   sum(try_cast("rows" as bigint)) as "rows"
            from {table} where system = $system group by method order by method""",
            {"system": system},
        )
        errors += duck.rows(
            f"""
            select method, outcome, coalesce(cast(detail as varchar), '') as detail, count(*) as n
            from {table} where system = $system and outcome <> 'ok' group by all order by n desc limit 20""",
            {"system": system},
        )
    return stats, errors


def source_figures(
    staging: Staging, duck: Duck, session: Any, dag_ids: Sequence[str], since: datetime
) -> SourceFigures:
    from erpsync.ui.runs import task_durations

    windows = _recent(staging, dag_ids, since)
    figures = SourceFigures()
    for folders in windows.values():
        for folder in folders:
            figures.windows += 1
            summary = staging.json_at(f"{folder.dag_dir.name}/{folder.name}/extract_summary.json")
            if not isinstance(summary, dict):
                figures.without_summary += 1
                continue
            calls = int(summary.get("calls") or 0)
            figures.calls += calls
            figures.pages += int(summary.get("pages") or 0)
            figures.retries += int(summary.get("retries") or 0)
            figures.throttled_seconds += float(summary.get("throttled_seconds") or 0)
            figures.orders += int(summary.get("orders") or 0)
            figures.lines += int(summary.get("lines") or 0)
            if calls and summary.get("seconds") is not None:
                figures.per_call_ms.append(float(summary["seconds"]) * 1000 / calls)
    if session is not None:
        figures.task_seconds = task_durations(session, list(dag_ids), "extract", since)
    figures.recorded, figures.recorded_errors = _recorded(staging, duck, windows, "wdt")
    return figures


def form_figures(staging: Staging, duck: Duck, session: Any, dag_ids: Sequence[str], since: datetime) -> FormFigures:
    from erpsync.ui.runs import task_durations

    windows = _recent(staging, dag_ids, since)
    figures = FormFigures(windows=sum(len(v) for v in windows.values()))
    parts = [p for folders in windows.values() for f in folders for p in report_parts(staging, f)]
    if parts:
        table = duck.table(parts, "outcome, field, message")
        for row in duck.rows(f"select outcome, count(*) as n from {table} group by outcome"):
            figures.outcomes[str(row["outcome"])] = int(row["n"])
        figures.reasons = duck.rows(
            f"""
            select outcome, coalesce(field, '') as field, coalesce(message, '') as message, count(*) as n
            from {table} where outcome in ('rejected', 'held') group by all order by n desc, outcome limit 15"""
        )
    if session is not None:
        figures.task_seconds = task_durations(session, list(dag_ids), "load", since)
    figures.recorded, figures.recorded_errors = _recorded(staging, duck, windows, "kingdee")
    return figures
