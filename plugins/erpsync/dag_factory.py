"""Build one Airflow DAG per scheme: extract → validate → transform → load, one run per window.

Parsing a DAG reads only the scheme files and compiles their mappings (so a malformed scheme shows as
an import error naming the row); connections, staging and the heavy libraries are touched only when a
task runs. XCom carries the window, paths and counts, never data.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    Param,
    get_parsing_context,
    task,
    teardown,
)
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from erpsync.alerts import RobotNotifier
from erpsync.mapping.compile import compile_mapping
from erpsync.preconditions import PreconditionSensor
from erpsync.run import Run
from erpsync.scheme import FILTER_VALUE, INCLUDE_DIR, Scheme, SchemeError, load_schemes
from erpsync.staging import FINISHED, staging_root
from erpsync.windows import Window, WindowError, resolve_window

log = logging.getLogger(__name__)

# An ISO date or date-time, optionally with an offset (no offset: the scheme's zone). The trigger form's
# date picker sends UTC with milliseconds ("2026-11-01T16:00:00.000Z"); a fraction other than zero is
# refused by the window itself, with its reason.
_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"


def _doc(scheme: Scheme) -> str:
    s, src, tgt = scheme.settings, scheme.source, scheme.target
    return (
        f"### {scheme.description}\n\n"
        f"Scheme `{scheme.path.name}`: **{src.api.method}** ({src.label}) → **{tgt.form.form_id} {tgt.api}** ({tgt.label}), "
        f"{len(tgt.mapping)} mapping rows.\n\n"
        f"* Schedule (传递时间): `{s.cron}` {s.timezone}; each run covers its window `[start, end)`.\n"
        f"* Retries (重试次数): {s.retries}. Enabled (是否启动): {s.enabled}. "
        f"Preconditions (前置条件): {', '.join(s.preconditions) or 'none'}.\n"
        f"* Trigger with params `window_start`/`window_end` (ISO, {s.timezone} when no offset) to run any window; "
        f'`filters` (any of {", ".join(src.filter_fields)}, e.g. `{{"shop_no": "FENXIAO004"}}`) narrows a run.\n'
        f"* Reads on {'last-modified' if src.by_modified else 'consign'} time, re-reading "
        f"{src.lookback} before each window; loads {s.load.chunk_size} bills a call, {s.load.concurrency} calls at once "
        f"(pool `{tgt.connection}`); a window with an order that did not reach Kingdee ends "
        f"{'red' if s.load.on_problem == 'fail' else 'green with warnings'}.\n"
        "* Reports per window under the staging root: `quality/docs/index.html` (Data Docs), "
        "`extract_summary.json`, `quarantine.parquet`, `unmapped.parquet`, `load_report/` (every order's outcome).\n"
    )


def build_dag(scheme: Scheme, zones: Mapping[str, str] | None = None) -> DAG:
    """The DAG of ``scheme``; ``zones`` gives the zone of each scheme its preconditions name (default:
    its own), whose window folders are keyed in their own zone."""
    mapping = compile_mapping(scheme)
    settings = scheme.settings

    def run_window(context: Any) -> Window:
        """This run's window: its params, else its data interval, else the last interval before it."""
        params = context.get("params") or {}
        try:  # bad run inputs: refused before any call, and no retry would change them
            return resolve_window(
                window_start=params.get("window_start"),
                window_end=params.get("window_end"),
                data_interval_start=context.get("data_interval_start"),
                data_interval_end=context.get("data_interval_end"),
                run_after=getattr(context.get("dag_run"), "run_after", None),
                cron=settings.cron,
                timezone=settings.timezone,
            )
        except WindowError as exc:
            raise AirflowFailException(f"run parameters: {exc}") from exc

    def run_of(manifest: Mapping[str, Any], run_id: str | None = None) -> Run:
        """The run a task's manifest describes (window, filters, dry run), with the compiled mapping."""
        return Run.from_manifest(scheme, manifest, root=staging_root(), run_id=run_id or "manual", mapping=mapping)

    with DAG(
        dag_id=scheme.dag_id,
        description=scheme.description,
        doc_md=_doc(scheme),
        schedule=CronDataIntervalTimetable(settings.cron, timezone=settings.timezone),
        start_date=pendulum.datetime(2024, 1, 1, tz=settings.timezone),
        catchup=False,
        max_active_runs=settings.max_active_runs,
        # new DAGs start paused: connections may not exist yet, and the first run would fire at once
        is_paused_upon_creation=True,
        # given here, not set later: Airflow decides whether a DAG has a failure callback when it is built
        on_failure_callback=RobotNotifier(
            settings.alerts, window_of=run_window, files_of=lambda manifest: run_of(manifest).files
        )
        if settings.alerts
        else None,
        tags=list(scheme.tags),
        default_args={
            "retries": settings.retries,
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(hours=1),
        },
        params={
            "window_start": Param(
                None,
                type=["null", "string"],
                format="date-time",
                pattern=_ISO_DATETIME,
                title="Window start",
                description=f"ISO date or date-time, {settings.timezone} unless an offset is given; empty: the run's "
                "schedule interval",
                examples=["2026-11-01", "2026-11-01T08:00:00+08:00"],
            ),
            "window_end": Param(
                None,
                type=["null", "string"],
                format="date-time",
                pattern=_ISO_DATETIME,
                title="Window end (exclusive)",
                description="Orders up to, not including, this time",
                examples=["2026-11-02", "2026-11-01T09:00:00+08:00"],
            ),
            "filters": Param(
                {},
                type=["object", "null"],
                additionalProperties=False,
                title="Filters (optional)",
                properties={f: {"type": "string", "pattern": FILTER_VALUE} for f in scheme.source.filter_fields},
                description=f'Narrow a run: any of {", ".join(scheme.source.filter_fields)}, e.g. {{"shop_no": "FENXIAO004"}}',
            ),
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Extract, validate and transform, look the bills up in Kingdee, post nothing: the load "
                "report shows what would be created",
            ),
        },
    ) as dag:
        # one pool per source connection caps the extract tasks reading on it at once (WDT's call rate
        # per app key is kept by the shared limiter, [erpsync] wdt_rate_limit_url)
        @task(task_id="extract", execution_timeout=timedelta(hours=2), pool=scheme.source.connection)
        def extract_task(
            params: dict[str, Any] | None = None, data_interval_start=None, data_interval_end=None, dag_run=None
        ) -> dict[str, Any]:
            began = time.perf_counter()
            from erpsync.connectors import config_errors, open_reader
            from erpsync.steps.extract import extract

            params = params or {}  # Airflow passes the run's params (the DAG declares them)
            if not settings.enabled:
                raise AirflowSkipException(f"scheme {scheme.name} is disabled (settings.enabled: false)")
            window = run_window(
                {
                    "params": params,
                    "data_interval_start": data_interval_start,
                    "data_interval_end": data_interval_end,
                    "dag_run": dag_run,
                }
            )
            try:  # bad run inputs: refused before any call, and no retry would change them
                filters = scheme.source.check_filters(params.get("filters") or {})
            except SchemeError as exc:
                raise AirflowFailException(f"run parameters: {exc}") from exc
            run = Run.open(
                scheme, window, staging_root(), filters=filters, dry_run=bool(params.get("dry_run")), mapping=mapping
            )
            try:
                with open_reader(scheme.source) as reader:
                    result = extract(run, reader)
            except config_errors(scheme) as exc:  # a retry would be refused alike
                raise AirflowFailException(str(exc)) from exc
            return step_done("extract", began, {**run.as_manifest(), "dir": str(run.files.dir), **asdict(result)})

        @task(task_id="validate", execution_timeout=timedelta(hours=1))
        def validate_task(manifest: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            began = time.perf_counter()
            from erpsync.steps.validate import validate

            return step_done("validate", began, {**manifest, **asdict(validate(run_of(manifest, run_id)))})

        @task(task_id="transform", execution_timeout=timedelta(hours=1))
        def transform_task(manifest: dict[str, Any]) -> dict[str, Any]:
            began = time.perf_counter()
            from erpsync.steps.transform import transform

            return step_done("transform", began, {**manifest, **asdict(transform(run_of(manifest)))})

        @task(
            task_id="load",
            execution_timeout=timedelta(hours=2),
            # windows load one after another however runs are made (a backfill has its own run limit)
            max_active_tis_per_dag=settings.max_active_runs,
            # one pool per target connection caps the calls of every run and DAG on it: each load
            # task holds as many slots as it has calls in flight
            pool=scheme.target.connection,
            pool_slots=settings.load.concurrency,
        )
        def load_task(manifest: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            began = time.perf_counter()
            from erpsync.connectors import config_errors, open_writer
            from erpsync.policy import WindowIncomplete, finish_window
            from erpsync.steps.load import load

            run = run_of(manifest, run_id)
            try:
                with open_writer(scheme.target) as writer:
                    result = load(run, writer)
            except config_errors(scheme) as exc:  # a retry cannot fix it: fail now, no retries
                raise AirflowFailException(str(exc)) from exc
            try:
                return step_done("load", began, {**manifest, **finish_window(run, result)})
            except WindowIncomplete as exc:
                raise AirflowFailException(str(exc)) from exc

        # a teardown: it runs after a failed load too, and leaves the run's state to the load
        @teardown
        @task(task_id="prune_staging")
        def prune_task() -> None:
            from erpsync.retention import keep_days, prune

            prune(staging_root(), scheme.dag_id, keep_days(), pendulum.now("UTC"), timezone=settings.timezone)

        extracted = extract_task()
        # Airflow's Task stub types a call with the function's own parameters, but TaskFlow passes each task
        # the XComArg of the one before (resolved to its dict when the task runs)
        load_task(transform_task(validate_task(extracted))) >> prune_task()  # type: ignore[arg-type]

        for upstream in settings.preconditions:
            (
                PreconditionSensor(
                    task_id=f"precondition_{upstream}",
                    upstream=upstream,
                    upstream_timezone=(zones or {}).get(upstream, settings.timezone),
                    root=staging_root,
                    window_of=run_window,
                    poke_interval=60,
                    timeout=6 * 3600,
                )
                >> extracted
            )
    return dag


def step_done(step: str, began: float, manifest: dict[str, Any]) -> dict[str, Any]:
    """A task's XCom with its step's own seconds (from the task function's first line, imports included)
    and the task process's peak RSS under ``steps``, also logged: what a run's wall time is set against
    to see Airflow's own share (scripts/bench_backfill.py)."""
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    log.info("%s took %.2f s; the task's peak RSS is %.0f MB", step, seconds, peak_mb)
    steps = {**manifest.get("steps", {}), step: {"seconds": round(seconds, 3), "peak_rss_mb": round(peak_mb)}}
    return {**manifest, "steps": steps}


def reconcile_dag_id(scheme: Scheme) -> str:
    return f"{scheme.dag_id}_reconcile"


def build_reconcile_dag(scheme: Scheme) -> DAG:
    """The scheme's daily reconciliation (对账): once the scheme's windows over the days have loaded
    (red or green), compare the last ``settings.reconcile.days`` days of both systems, store each day
    under the staging root and tell the robots of differences not seen before."""
    settings, zone = scheme.settings, scheme.settings.timezone
    mapping = compile_mapping(scheme)

    def days_of(context: Any) -> list[date]:
        from erpsync.reconcile import days_before

        params = context.get("params") or {}
        try:
            last = date.fromisoformat(params["day"]) if params.get("day") else None
        except ValueError as exc:
            raise AirflowFailException(f"run parameters: day: not a date (YYYY-MM-DD): {params['day']!r}") from exc
        if last is None:  # the day before the run, in the scheme's zone
            ran = getattr(context.get("dag_run"), "run_after", None) or pendulum.now("UTC")
            last = pendulum.instance(ran).in_timezone(zone).date().subtract(days=1)
        return days_before(last, int(params.get("days") or settings.reconcile.days))

    def days_window_of(context: Any) -> Window:
        from erpsync.reconcile.sides import days_window

        return days_window(days_of(context), zone)

    with DAG(
        dag_id=reconcile_dag_id(scheme),
        description=f"对账 {scheme.description}",
        doc_md=(
            f"### 对账 {scheme.dag_id}\n\nEach run compares the last {settings.reconcile.days} days (`{zone}`) of "
            f"{scheme.source.api.method} with Kingdee's {scheme.target.form.form_id} bills, once the windows of "
            f"`{scheme.dag_id}` over those days have loaded. Results: the erpsync UI's reconciliation page and "
            "`<staging root>/<dag_id>/reconcile/day=…/`. Params: `day` (the last day, YYYY-MM-DD), `days`, "
            "`repush` (save the missing bills that are loadable now)."
        ),
        schedule=CronTriggerTimetable(settings.reconcile.cron, timezone=zone),
        start_date=pendulum.datetime(2024, 1, 1, tz=zone),
        catchup=False,
        # a day asked for by hand must not queue behind a scheduled check still waiting for its windows
        # (after unpausing, the latest cron tick's run waits up to the sensor's timeout)
        max_active_runs=4,
        is_paused_upon_creation=True,
        tags=[*scheme.tags, "reconcile"],
        default_args={"retries": settings.retries, "retry_delay": timedelta(seconds=settings.retry_delay_seconds)},
        params={
            "day": Param(
                None, type=["null", "string"], format="date", title="Last day", description="Default: yesterday"
            ),
            "days": Param(settings.reconcile.days, type="integer", minimum=1, maximum=92, title="Days"),
            "repush": Param(
                False,
                type="boolean",
                title="Re-push",
                description="Save the missing bills that are loadable now (held, rejected, deleted), then check again",
            ),
        },
    ) as dag:

        @task(task_id="reconcile", execution_timeout=timedelta(hours=2))
        def reconcile_task(params: dict[str, Any] | None = None, dag_run: Any = None) -> dict[str, Any]:
            from erpsync.alerts import notify_reconciliation
            from erpsync.connectors import config_errors, open_reader, open_writer
            from erpsync.reconcile import reconcile, repush
            from erpsync.reconcile.compare import new_differences
            from erpsync.reconcile.store import read_day

            days = days_of({"params": params or {}, "dag_run": dag_run})
            root = staging_root()
            before = {d.isoformat(): read_day(root, scheme.dag_id, d.isoformat()) for d in days}
            try:
                with open_writer(scheme.target) as writer:
                    done = reconcile(scheme, days, root, open_reader, writer, mapping=mapping)
                    if (params or {}).get("repush"):
                        repush(scheme, done, root, writer)
                        done = reconcile(scheme, days, root, open_reader, writer, mapping=mapping)
            except config_errors(scheme) as exc:
                raise AirflowFailException(str(exc)) from exc
            for result in done.results:
                if new_differences(before[result.day], result):
                    notify_reconciliation(settings.alerts, dag_id=scheme.dag_id, day=result.day, counts=result.counts)
            return {r.day: r.counts for r in done.results}

        (
            PreconditionSensor(
                task_id="windows_loaded",
                upstream=scheme.dag_id,
                upstream_timezone=zone,
                root=staging_root,
                window_of=days_window_of,
                marker=FINISHED,
                poke_interval=300,
                timeout=6 * 3600,
            )
            >> reconcile_task()
        )
    return dag


def build_dags(include_dir: Path = INCLUDE_DIR) -> dict[str, DAG]:
    """Each scheme's DAG and its reconciliation DAG. A task process builds only the DAG it runs (Airflow's
    parsing context names it): every task of every run parses this file, the other DAGs are not needed."""
    schemes = load_schemes(include_dir)  # all of them: a precondition reads another scheme's zone
    zones = {scheme.dag_id: scheme.settings.timezone for scheme in schemes}
    wanted = get_parsing_context().dag_id
    dags = {s.dag_id: build_dag(s, zones) for s in schemes if wanted in (None, s.dag_id)}
    for scheme in schemes:
        if scheme.target.form.reconcile is not None and wanted in (None, reconcile_dag_id(scheme)):
            dags[reconcile_dag_id(scheme)] = build_reconcile_dag(scheme)
    return dags
