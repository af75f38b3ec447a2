"""Shared test set-up: an isolated Airflow home, and both emulators served over real loopback sockets."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from emulators.kingdee import KingdeeIdentity
    from emulators.wdt import WdtIdentity

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its home and config when first imported: point it at a throw-away home first.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="erpsync-test-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["GX_ANALYTICS_ENABLED"] = "false"

# One data set for all tests: both emulators derive it from the same seed.
SEED = 7
ORDERS = 60
START = date(2026, 11, 1)
DAYS = 3


# The credentials each emulator accepts, as keyword arguments of its make_server and of the client's config.
WDT: WdtIdentity = {
    "app_key": "test-app-key",
    "app_secret": "test-app-secret-0001",
    "target_app_key": "21363512",
    "sid": "testshop",
}
KINGDEE: KingdeeIdentity = {
    "acct_id": "6502e1a3c5b1f0",
    "username": "erpsync",
    "app_id": "318275_7f/uRxDvTuD2wKjE7dyu2VxM6JVZ5tDN",
    "app_secret": "5f7c1b0e9d6a4c2e8b3a7d9f1e0c6b4a",
}


def free_port() -> int:
    """A free loopback port, not one of Airflow's log servers (worker 8793, triggerer 8794)."""
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in (8793, 8794):
            return port


def wdt_connection(url: str) -> str:
    """A WDT connection to the emulator at ``url`` (the test identity, no call spacing), as Airflow's
    ``AIRFLOW_CONN_*`` JSON."""
    extra = {"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0}
    return json.dumps(
        {"conn_type": "generic", "host": url, "login": WDT["app_key"], "password": WDT["app_secret"], "extra": extra}
    )


def connect_emulators(mp: pytest.MonkeyPatch, wdt_url: str, kingdee_url: str, **kingdee_extra: Any) -> None:
    """``wdt_default`` and ``kingdee_default`` pointing at the emulators, as environment connections;
    ``kingdee_extra`` adds to (or replaces) the Kingdee connection's extra."""
    mp.setenv("AIRFLOW_CONN_WDT_DEFAULT", wdt_connection(wdt_url))
    extra = {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "backoff_seconds": 0.01, **kingdee_extra}
    kingdee = {"conn_type": "generic", "host": kingdee_url, "login": KINGDEE["username"], "extra": extra}
    mp.setenv("AIRFLOW_CONN_KINGDEE_DEFAULT", json.dumps({**kingdee, "password": KINGDEE["app_secret"]}))


def airflow_headers(base: str, dag_id: str, credentials: Any, alive: Any, timeout: float, log: Any) -> dict[str, str]:
    """REST headers of a live Airflow once its api-server answers and knows ``dag_id`` (``api_headers``)."""
    from airflow_local import api_headers

    headers = api_headers(base, dag_id, credentials, alive, timeout)
    if headers is None:
        pytest.fail(f"the api-server or the DAG {dag_id} did not come up; see {log}")
    return headers


def stop_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its group; SIGKILL after ``timeout``."""
    from airflow_local import stop_group as stop

    stop(process, timeout)


@contextmanager
def serving(server: Any) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def wdt_emulator() -> Iterator[Any]:
    from emulators.wdt import make_server

    with serving(make_server("127.0.0.1", 0, **WDT, seed=SEED, orders=ORDERS, start=START, days=DAYS)) as server:
        yield server


@pytest.fixture
def kingdee_emulator(tmp_path: Path) -> Iterator[Any]:
    from emulators.kingdee import make_server

    with serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kingdee", seed=SEED)) as server:
        yield server


@pytest.fixture
def edited_scheme(tmp_path: Path) -> Any:
    """``edit(change)``: a copy of include/ whose sales_outstock scheme ``change(data)`` altered, loaded."""
    import shutil

    import yaml

    from erpsync.scheme import INCLUDE_DIR, load_scheme

    include = tmp_path / "include"
    shutil.copytree(INCLUDE_DIR, include)
    path = include / "schemes" / "sales_outstock.yaml"

    def edit(change: Any) -> Any:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return load_scheme(path, include)

    return edit


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The metadata database of the test Airflow home (SQLite), for runs with ``dag.test()``."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, cwd=REPO)


@pytest.fixture(scope="session")
def dataset() -> Any:
    from emulators.dataset import build_dataset

    return build_dataset(SEED, ORDERS, START, DAYS)


# This machine's PostgreSQL and Redis on loopback (.ci/run starts them where they are not running):
# the limiter shared by hosts, and the CeleryExecutor deployment test.
POSTGRES_ADMIN_URL = os.environ.get("ERPSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ERPSYNC_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); .ci/run starts it")
    return REDIS_URL


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on this machine's PostgreSQL, dropped afterwards; yields its URL."""
    import uuid

    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}); .ci/run starts it")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database("erpsync_test") as url:
        yield url


def load_bills(client: Any, files: Any, settings: Any = None, dry_run: bool = False, scheme: Any = None) -> Any:
    """The load step over the bills and request.json in ``files``, through the Kingdee connector on
    ``client``, with ``settings`` as the scheme's settings.load (default: the sales scheme's own)."""
    from erpsync.kingdee.connector import KingdeeTarget
    from erpsync.steps.load import load

    scheme = scheme or _sales_scheme()
    if settings is not None:
        scheme = scheme.edited("settings.load", settings)
    # the load reads the form, key and options from request.json: the mapping is not used
    return load(run_of(scheme, files, dry_run=dry_run), KingdeeTarget(client))


def run_of(scheme: Any, files: Any, filters: dict[str, str] | None = None, dry_run: bool = False) -> Any:
    """The run of ``scheme`` whose staging folder is ``files`` (built by the test)."""
    from erpsync.run import Run

    return Run(scheme, files.window, files, dict(filters or {}), dry_run, "test")


@functools.cache
def _sales_scheme() -> Any:
    from erpsync.scheme import load_scheme

    return load_scheme(REPO / "include" / "schemes" / "sales_outstock.yaml")
