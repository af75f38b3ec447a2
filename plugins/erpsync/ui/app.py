"""The FastAPI app of the erpsync pages, mounted by Airflow's api-server at ``/erpsync``.

Every route depends on Airflow's ``GetUserDep``: no page answers without Airflow's login (the UI's
``_token`` cookie or a Bearer JWT), and each page shows only DAGs the auth manager lets the user read.

Routes (under ``/erpsync``):

* ``/``                                  the DAGs, each with its latest windows
* ``/dags/{dag_id}``                     trend over recent windows, the windows and the recent runs
* ``/dags/{dag_id}/runs/{run_id}``       a run's report (its window: see ``runs``); alerts link here
* ``/dags/{dag_id}/windows/{folder}``    a window's report, by its staging folder
* ``/dags/{dag_id}/reconcile``           the DAG's reconciled days (对账), as a calendar
* ``/dags/{dag_id}/reconcile/{day}``     a day's totals, groups and differences; alerts link here
* ``/dags/{dag_id}/reconcile/{day}/export.xlsx`` and ``…/export.csv``: the day's exports
* ``/search?q=…``                        where is my order: its history across all windows
* ``/apis``                              the API catalog with figures of recent windows
* ``/staging/{dag_id}/{folder}/quality/docs/{path}`` and ``/staging/_gx_static/{version}/{path}``:
  the GX Data Docs, laid out as in the staging root so the pages' relative links work unchanged
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from erpsync.scheme import INCLUDE_DIR
from erpsync.staging import StoragePath
from erpsync.ui import context as ctx
from erpsync.ui.docs import DOCS_CSP, VERSION, content_type, dress, resolve

URL_PREFIX = "/erpsync"
_HERE = Path(__file__).parent
_STATIC = {
    "erpsync.css": "text/css; charset=utf-8",
    "gx-docs.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# our pages: no script, nothing from other hosts, framed only by Airflow's own UI
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'"
)
TRENDS = (24, 48, 96, 168, 336, 720)  # windows on a DAG's chart (hourly: 1 day … 30 days)
GX_STATIC = "_gx_static"  # erpsync.steps.validate.GX_STATIC (not imported: it pulls pandas in)


def _site_zone() -> str:
    """Where a page belongs to no scheme: the zone Airflow reads naive times in, ``[core] default_timezone``."""
    from airflow.settings import TIMEZONE

    return str(TIMEZONE.name)


def _now() -> datetime:
    import pendulum

    return pendulum.now(_site_zone())


def _default_root() -> StoragePath:
    from erpsync.staging import staging_root

    return staging_root()


def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape

    from erpsync.ui.reports import OUTCOMES

    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = _number
    env.filters["ms"] = _ms
    # a DAG's pages show times in its scheme's zone (the page's ``zone``), the others in Airflow's
    env.filters["when"] = pass_context(lambda c, value, fmt="YYYY-MM-DD HH:mm:ss": _when(value, c["zone"], fmt))
    env.globals["OUTCOMES"] = OUTCOMES
    return env


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:,.1f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _when(value: Any, zone: str, fmt: str = "YYYY-MM-DD HH:mm:ss") -> str:
    import pendulum

    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = pendulum.parse(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return pendulum.instance(value).in_timezone(zone).format(fmt)
    return str(value)


def link(request: Request, *segments: str, **query: Any) -> str:
    """A path under this app, each segment percent-encoded (run ids hold ``+`` and ``:``)."""
    base = request.scope.get("root_path", "").rstrip("/")
    path = base + "/" + "/".join(quote(str(s), safe="") for s in segments)
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return path + (f"?{urlencode(query)}" if query else "")


def airflow_link(request: Request, *segments: str) -> str:
    """A page of Airflow's own UI (this app is mounted under it)."""
    base = request.scope.get("root_path", "").rstrip("/").removesuffix(URL_PREFIX)
    return base + "/" + "/".join(quote(str(s), safe="") for s in segments)


def _context(request: Request, user: GetUserDep) -> ctx.Context:
    state = request.app.state
    return ctx.build(state.erpsync_root, state.erpsync_include_dir, user)


Ctx = Annotated[ctx.Context, Depends(_context)]


def create_app(root: Callable[[], StoragePath] | None = None, include_dir: Path = INCLUDE_DIR) -> FastAPI:
    """The app; ``root`` returns the staging root (default ``[erpsync] staging_root``)."""
    app = FastAPI(
        title="erpsync reports",
        dependencies=[Depends(get_user)],  # every route, static files included
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.erpsync_root = root or _default_root
    app.state.erpsync_include_dir = include_dir
    env = _templates()

    def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("zone", _site_zone())
        body = env.get_template(template).render(
            request=request,
            link=lambda *s, **q: link(request, *s, **q),
            airflow=lambda *s: airflow_link(request, *s),
            **values,
        )
        return HTMLResponse(body, status_code=status_code)

    def readable(c: ctx.Context, dag_id: str, runs: bool = False) -> None:
        if dag_id not in c.dags:
            if dag_id in c.schemes or dag_id in c.staging.dag_ids():
                raise HTTPException(403, f"you may not read DAG {dag_id!r}")
            raise HTTPException(404, f"{dag_id!r} is not an erpsync DAG")
        if runs and not ctx.may_read_runs(c.user, dag_id):
            raise HTTPException(403, f"you may not read the runs of {dag_id!r}")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        extra = getattr(exc, "headers", None)
        if "text/html" not in request.headers.get("accept", ""):  # API clients keep Airflow's JSON answer
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=extra)
        response = page(
            request,
            "error.html",
            status_code=exc.status_code,
            status=exc.status_code,
            detail=str(exc.detail),
            signed_out=exc.status_code == 401,
            search=None,
        )
        response.headers.update(extra or {})
        return response

    # -- pages --------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, name="index")
    def index(request: Request, c: Ctx) -> HTMLResponse:
        from erpsync.keys import dag_keys
        from erpsync.ui.reports import summaries

        rows = []
        with c.staging.duck() as duck:
            for dag_id in c.dags:
                whole = [n for n in c.staging.names(dag_id) if "," not in n]  # not narrowed, not a dry run
                latest_names = whole[:24]
                keys = dag_keys(c.staging.root / dag_id, latest_names) if latest_names else None
                latest = summaries(c.staging, duck, dag_id, c.staging.folders(dag_id, latest_names), keys)
                rows.append(
                    {
                        "dag_id": dag_id,
                        "scheme": c.scheme(dag_id),
                        "windows": len(whole),
                        "latest": latest[0] if latest else None,
                        "orders": sum(s.orders or 0 for s in latest),
                        "in_kingdee": sum(s.in_kingdee for s in latest),
                        "problems": sum(s.problems for s in latest),
                    }
                )
        return page(request, "index.html", rows=rows, problems=c.scheme_problems, search=None)

    @app.get("/dags/{dag_id}", response_class=HTMLResponse, name="dag")
    def dag(
        request: Request, dag_id: str, c: Ctx, session: SessionDep, n: Annotated[int, Query(ge=1, le=max(TRENDS))] = 48
    ) -> HTMLResponse:
        from erpsync.keys import dag_keys
        from erpsync.ui.chart import stacked
        from erpsync.ui.reports import OUTCOMES, summaries
        from erpsync.ui.runs import recent_runs

        readable(c, dag_id)
        names = c.staging.names(dag_id)  # only the windows shown are parsed and read
        whole = [name for name in names if "," not in name]
        filtered = [name for name in names if "," in name][:50]
        keys = dag_keys(c.staging.root / dag_id, whole[:n] + filtered) if names else None
        with c.staging.duck() as duck:
            shown = summaries(c.staging, duck, dag_id, c.staging.folders(dag_id, whole[:n]), keys)
            narrowed = summaries(c.staging, duck, dag_id, c.staging.folders(dag_id, filtered), keys)
        points = [
            {
                "label": s.window.start.format("MM-DD HH:mm"),
                "title": f"{s.window} · {s.status}",
                "href": link(request, "dags", dag_id, "windows", s.folder.name),
                "values": s.outcomes,
            }
            for s in reversed(shown)
        ]
        chart = stacked(points, {k: f"{v[0]} {k}" for k, v in OUTCOMES.items()})
        runs = recent_runs(session, dag_id, c.scheme(dag_id)) if ctx.may_read_runs(c.user, dag_id) else []
        return page(
            request,
            "dag.html",
            dag_id=dag_id,
            scheme=c.scheme(dag_id),
            zone=c.staging.zone(dag_id),
            chart=chart,
            shown=shown,
            older=max(len(whole) - len(shown), 0),
            narrowed=narrowed,
            runs=runs,
            staged=set(names),
            n=n,
            trends=TRENDS,
            search=None,
        )

    def window_page(
        request: Request, c: ctx.Context, dag_id: str, folder_name: str | None, run: Any = None
    ) -> HTMLResponse:
        from erpsync.ui.reports import detail, summaries

        folder = c.staging.window(dag_id, folder_name) if folder_name else None
        report = None
        if folder is not None:
            with c.staging.duck() as duck:
                report = detail(c.staging, duck, summaries(c.staging, duck, dag_id, [folder])[0])
        return page(
            request,
            "window.html",
            dag_id=dag_id,
            scheme=c.scheme(dag_id),
            zone=c.staging.zone(dag_id),
            run=run,
            folder_name=folder_name,
            report=report,
            s=report.summary if report else None,
            search=None,
        )

    @app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse, name="run")
    def run(request: Request, dag_id: str, run_id: str, c: Ctx, session: SessionDep) -> HTMLResponse:
        from erpsync.ui.runs import run_window

        readable(c, dag_id, runs=True)
        found = run_window(session, dag_id, run_id, c.scheme(dag_id))
        if found is None:
            raise HTTPException(404, f"Airflow has no run {run_id!r} of {dag_id!r}")
        return window_page(request, c, dag_id, found.folder_name, found)

    @app.get("/dags/{dag_id}/windows/{folder}", response_class=HTMLResponse, name="window")
    def window(request: Request, dag_id: str, folder: str, c: Ctx) -> HTMLResponse:
        readable(c, dag_id, runs=True)
        if c.staging.window(dag_id, folder) is None:
            raise HTTPException(404, f"no window folder {folder!r} of {dag_id!r} under the staging root")
        return window_page(request, c, dag_id, folder)

    # -- reconciliation (对账) -------------------------------------------------------------------
    def reconciled(c: ctx.Context, dag_id: str, day: str) -> Any:
        from erpsync.reconcile.store import read_day
        from erpsync.ui.reconciliation import valid_day

        readable(c, dag_id, runs=True)
        if not valid_day(day):  # checked before the day becomes part of a path
            raise HTTPException(404, f"{day!r} is not a day (YYYY-MM-DD)")
        result = read_day(c.staging.root, dag_id, day)
        if result is None:
            raise HTTPException(404, f"{dag_id!r} has no reconciliation of {day}")
        return result

    @app.get("/dags/{dag_id}/reconcile", response_class=HTMLResponse, name="reconcile")
    def reconcile(request: Request, dag_id: str, c: Ctx) -> HTMLResponse:
        from erpsync.reconcile.store import reconciled_days
        from erpsync.ui.reconciliation import KINDS, is_clean, months

        readable(c, dag_id, runs=True)
        days = reconciled_days(c.staging.root, dag_id)
        return page(
            request,
            "reconcile.html",
            dag_id=dag_id,
            scheme=c.scheme(dag_id),
            days=days,
            months=months(days),
            kinds=KINDS,
            is_clean=is_clean,
            search=None,
        )

    @app.get("/dags/{dag_id}/reconcile/{day}", response_class=HTMLResponse, name="reconcile_day")
    def reconcile_day(request: Request, dag_id: str, day: str, c: Ctx) -> HTMLResponse:
        from erpsync.reconcile.store import day_folder
        from erpsync.ui import reconciliation as shown

        result = reconciled(c, dag_id, day)
        summary = c.staging.json(day_folder(c.staging.root, dag_id, day) / "summary.json") or {}
        return page(
            request,
            "reconcile_day.html",
            dag_id=dag_id,
            scheme=c.scheme(dag_id),
            day=day,
            result=result,
            reconciled_at=summary.get("reconciled_at"),
            totals=shown.totals(result.totals),
            groups=shown.group_rows(result.groups),
            differences=shown.by_kind(result.differences),
            counts=result.counts,
            kinds=shown.KINDS,
            field_label=shown.field_label,
            reason_label=shown.reason_label,
            limit=shown.ROW_LIMIT,
            search=None,
        )

    @app.get("/dags/{dag_id}/reconcile/{day}/export.{kind}", name="reconcile_export")
    def reconcile_export(dag_id: str, day: str, kind: str, c: Ctx) -> Response:
        from erpsync.ui.reconciliation import EXPORTS

        if kind not in EXPORTS:
            raise HTTPException(404, f"no export as {kind!r} (xlsx or csv)")
        export, media_type = EXPORTS[kind]
        return Response(
            export(reconciled(c, dag_id, day)),
            media_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="{dag_id}-reconcile-{day}.{kind}"'},
        )

    @app.get("/search", response_class=HTMLResponse, name="search")
    def search(
        request: Request,
        c: Ctx,
        q: Annotated[str, Query(max_length=200)] = "",
        dag: Annotated[str, Query(max_length=250)] = "",
    ) -> HTMLResponse:
        from erpsync.ui.search import clean_query
        from erpsync.ui.search import search as find

        text = clean_query(q)
        result = None
        if text:
            scope = {d: s for d, s in c.readable_schemes().items() if not dag or d == dag}
            with c.staging.duck() as duck:
                result = find(c.staging, duck, scope, text)
        return page(
            request,
            "search.html",
            query=text,
            dag=dag if dag in c.dags else "",
            dags=c.dags,
            result=result,
            search=text,
        )

    @app.get("/apis", response_class=HTMLResponse, name="apis")
    def apis(
        request: Request, c: Ctx, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 7
    ) -> HTMLResponse:
        from erpsync.ui.catalog import FormFigures, SourceFigures, catalog, form_figures, percentile, source_figures

        readable_schemes = [s for d, s in c.readable_schemes().items() if s is not None]
        book = catalog(c.include_dir, readable_schemes)
        since = _now() - timedelta(days=days)
        figures: dict[str, SourceFigures | FormFigures] = {}
        with c.staging.duck() as duck:
            for source in book.sources:
                figures[source.method] = source_figures(c.staging, duck, session, source.used_by, since)
            for form in book.forms:
                figures[form.form_id] = form_figures(c.staging, duck, session, form.used_by, since)
        return page(
            request, "apis.html", book=book, figures=figures, days=days, since=since, percentile=percentile, search=None
        )

    # -- files --------------------------------------------------------------------------------
    @app.get("/static/{name}", name="static")
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, "no such file")
        return Response(
            (_HERE / "static" / name).read_bytes(),
            media_type=_STATIC[name],
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @app.get(f"/staging/{GX_STATIC}/{{version}}/{{path:path}}", name="gx_static")
    def gx_static(version: str, path: str, c: Ctx) -> Response:
        target = resolve(c.staging.root / GX_STATIC / version, path) if VERSION.match(version) else None
        if target is None:
            raise HTTPException(404, "no such file")
        # the same bytes for every window of a GX version: the browser keeps them
        cache = "private, max-age=604800, immutable"
        return Response(
            target.read_bytes(),
            media_type=content_type(target),
            headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": cache},
        )

    @app.get("/staging/{dag_id}/{folder}/quality/docs/{path:path}", name="docs")
    def docs(request: Request, dag_id: str, folder: str, path: str, c: Ctx) -> Response:
        readable(c, dag_id, runs=True)
        found = c.staging.window(dag_id, folder)
        target = resolve(found.path / "quality" / "docs", path) if found else None
        if target is None:
            raise HTTPException(404, "no such Data Docs file")
        body = target.read_bytes()
        if target.name.endswith(".html"):
            back = link(request, "dags", dag_id, "windows", folder)
            page_text = dress(
                body.decode("utf-8", errors="replace"),
                link(request, "static", "gx-docs.css"),
                back,
                "← 返回窗口报告 Back to the window report",
            )
            body = page_text.encode("utf-8")
        return Response(body, media_type=content_type(target), headers={"Content-Security-Policy": DOCS_CSP})

    return app
