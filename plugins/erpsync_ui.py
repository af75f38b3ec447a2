"""Airflow plugin: the erpsync report pages inside Airflow's UI, behind its login.

* ``fastapi_apps``: ``erpsync.ui.app`` mounted by the api-server at ``/erpsync``;
* ``external_views``: a "Browse" menu entry, and tabs on the DAG, DAG run and task instance pages
  (the UI puts the page's ``{DAG_ID}``, ``{RUN_ID}`` and ``{TASK_ID}`` into ``href``, URL-encoded;
  a tab shows only with a ``url_route``, each unique across plugins);
* ``listeners``: each run's note names its window (``erpsync.run_notes``);
* ``fastapi_root_middlewares``: on Airflow 3.3.2, the fix that lets "Test connection" work on a
  connection without a port (``erpsync.ui.connection_test``).

The ``erpsync`` package beside this file is a library (``.airflowignore``), not more plugin files.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow import __version__ as AIRFLOW_VERSION
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from erpsync import run_notes
from erpsync.ui import connection_test
from erpsync.ui.app import URL_PREFIX, create_app

# hrefs are paths on Airflow's host; under a base_url with a path (…/airflow/) the app is there too
_BASE = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
_HREF = f"{_BASE}{URL_PREFIX}"
_ICON = f"{_HREF}/static/icon.svg"


class ErpsyncUiPlugin(AirflowPlugin):
    name = "erpsync_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "erpsync reports"}]
    listeners = [run_notes]
    fastapi_root_middlewares = (
        [{"middleware": connection_test.PortlessConnectionTest, "name": "test connections without a port"}]
        if connection_test.needed(AIRFLOW_VERSION)
        else []
    )
    external_views = [
        {
            "name": "erpsync 同步报告",
            "href": f"{_HREF}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "erpsync",
            "icon": _ICON,
        },
        {
            "name": "同步趋势 erpsync",
            "href": f"{_HREF}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "erpsync-dag",
            "icon": _ICON,
        },
        {
            "name": "同步报告 erpsync",
            "href": f"{_HREF}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "erpsync-run",
            "icon": _ICON,
        },
        # the run's report, scrolled to the task's section (#extract, #validate, #transform, #load)
        {
            "name": "同步报告 erpsync",
            "href": f"{_HREF}/dags/{{DAG_ID}}/runs/{{RUN_ID}}#{{TASK_ID}}",
            "destination": "task_instance",
            "url_route": "erpsync-task",
            "icon": _ICON,
        },
    ]
