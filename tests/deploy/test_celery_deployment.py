"""The docker-compose deployment, run as local processes: CeleryExecutor on PostgreSQL and Redis.

What docker-compose.yaml starts, started here from its own settings and commands, with this machine's
PostgreSQL (a throw-away database) and Redis instead of its containers: the init script, the
api-server, scheduler, dag-processor, triggerer, two Celery workers, Flower and both emulators (their
own commands are run by test_emulator_services.py; here they run in the test's process, whose view of
the calls the test reads). A five-day backfill
runs three windows at a time; one worker is killed with SIGKILL while it loads a window. In the end
Kingdee holds exactly one bill per valid order, every run is green, its logs are readable through
the REST API, and neither emulator saw its limit broken: WDT's calls per minute per app key (the
limiter in Redis, shared by both workers, each with its own temp folder as on two hosts) and
Kingdee's calls in flight (the Airflow pool, held in the metadata database).

The figures of the README's "Scaling" section come from this test's printout (pytest -s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import KINGDEE, REPO, WDT, airflow_headers, free_port, postgres_database, serving, stop_group
from tests.deploy.compose import airflow_environment, service_command

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]

DAG_ID = "wdt_kingdee_sales_outstock"
SEED, ORDERS, START, DAYS = 11, 150, date(2026, 11, 1), 3  # orders ship 1-3 Nov and complete by 5 Nov
BACKFILL_DAYS = 5
# The WDT emulator refuses the 121st call within 60 s, as WDT does at its quota. Calls reserved exactly
# 0.5 s apart arrive with jitter and may put 121 in some 60 s (seen here: one refusal); a 10% margin,
# as a deployment should keep too, leaves room for it.
WDT_PER_MINUTE = 120
WDT_INTERVAL = 0.55
KINGDEE_SLOTS = 4  # the pool kingdee_default; each load takes settings.load.concurrency = 2 of them
BIN = Path(sys.executable).parent


def _include(root: Path) -> Path:
    """include/ with the scheme made daily, three windows at a time, small pages and chunks (many calls)."""
    include = root / "include"
    shutil.copytree(REPO / "include", include)
    path = include / "schemes" / "sales_outstock.yaml"
    scheme = yaml.safe_load(path.read_text(encoding="utf-8"))
    scheme["source"]["pagination"]["page_size"] = 1
    settings = scheme["settings"]
    settings["schedule"]["cron"] = "0 0 * * *"
    settings.update(max_active_runs=3, retries=2, retry_delay_seconds=5)
    settings["load"].update(chunk_size=5, concurrency=2, on_problem="warn")  # the defects are the e2e tests' concern
    path.write_text(yaml.safe_dump(scheme, allow_unicode=True), encoding="utf-8")
    pools = json.loads((include / "pools.json").read_text())
    pools["kingdee_default"]["slots"] = KINGDEE_SLOTS
    (include / "pools.json").write_text(json.dumps(pools))
    return include


class Deployment:
    def __init__(
        self,
        base: str,
        headers: dict[str, str],
        workers: dict[str, subprocess.Popen],
        wdt: Any,
        kingdee: Any,
        logs: Path,
        flower: tuple[str, tuple[str, str]],
    ) -> None:
        self.base, self.headers, self.workers, self.wdt, self.kingdee, self.logs = (
            base,
            headers,
            workers,
            wdt,
            kingdee,
            logs,
        )
        self.flower = flower

    def get(self, path: str) -> Any:
        reply = requests.get(f"{self.base}/api/v2{path}", headers=self.headers, timeout=30)
        reply.raise_for_status()
        return reply.json() if "json" in reply.headers.get("content-type", "") else reply.text

    def call(self, method: str, path: str, body: dict) -> Any:
        reply = requests.request(method, f"{self.base}/api/v2{path}", headers=self.headers, json=body, timeout=30)
        assert reply.ok, reply.text
        return reply.json()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, redis_url) -> Iterator[Deployment]:
    import redis

    from emulators.kingdee import make_server as kingdee_server
    from emulators.wdt import make_server as wdt_server

    root = tmp_path_factory.mktemp("deployment")
    home, dags, logs = root / "airflow", root / "dags", root / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    include = _include(root)
    (dags / "erpsync_dags.py").write_text(
        '"""Airflow DAGs of this deployment\'s schemes (DAG discovery reads files naming Airflow and DAG)."""\n\n'
        "from pathlib import Path\n\nfrom erpsync.dag_factory import build_dags\n\n"
        f"globals().update(build_dags(Path({str(include)!r})))\n"
    )
    broker, limiter = (redis_url.rsplit("/", 1)[0] + f"/{n}" for n in (3, 4))  # databases of their own
    for url in (broker, limiter):
        redis.Redis.from_url(url).flushdb()
    port = free_port()

    with ExitStack() as stack:
        db = stack.enter_context(postgres_database("erpsync_deploy"))
        wdt = stack.enter_context(
            serving(
                wdt_server(
                    "127.0.0.1",
                    0,
                    **WDT,
                    seed=SEED,
                    orders=ORDERS,
                    start=START,
                    days=DAYS,
                    throttle_per_minute=WDT_PER_MINUTE,
                )
            )
        )
        kingdee = stack.enter_context(
            serving(
                kingdee_server(
                    "127.0.0.1",
                    0,
                    **KINGDEE,
                    data_dir=root / "kingdee",
                    seed=SEED,
                    per_bill_ms=150,
                    max_concurrent=KINGDEE_SLOTS,
                )
            )
        )
        password = uuid.uuid4().hex
        sqlalchemy_url = db.replace(
            "postgresql://", "postgresql+psycopg2://", 1
        )  # SQLAlchemy 2.1's default is psycopg 3
        staging = (root / "staging").as_uri()
        # docker-compose.yaml's settings, with this machine's services where its containers would be
        compose = {
            "postgres:5432": "127.0.0.1:5432",
            "redis:6379": "127.0.0.1:6379",
            "airflow-apiserver:8080": f"localhost:{port}",
            "/opt/airflow/auth": str(home),
            "file:///opt/airflow/staging": staging,
        }
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **airflow_environment(compose, service="airflow-init"),
            # where this run's pieces are, instead of the containers' paths and services
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url,
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__ERPSYNC__WDT_RATE_LIMIT_URL": limiter,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            # a killed worker's task is found within seconds, not the default five minutes
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # the variables of .env that scripts/deploy_init.py turns into the login and the connections
            "AIRFLOW_UI_PASSWORDS": f"admin:{password}",
            "WDT_GATEWAY_URL": wdt.url,
            "WDT_APP_KEY": WDT["app_key"],
            "WDT_APP_SECRET": WDT["app_secret"],
            "WDT_SID": WDT["sid"],
            "WDT_TARGET_APP_KEY": WDT["target_app_key"],
            "WDT_MIN_INTERVAL_SECONDS": str(WDT_INTERVAL),
            "KINGDEE_URL": kingdee.url,
            "KINGDEE_ACCT_ID": KINGDEE["acct_id"],
            "KINGDEE_USERNAME": KINGDEE["username"],
            "KINGDEE_APP_ID": KINGDEE["app_id"],
            "KINGDEE_APP_SECRET": KINGDEE["app_secret"],
            "ERPSYNC_POOLS_FILE": str(include / "pools.json"),
        }
        assert set(compose_keys := [k for k in env if k.startswith("AIRFLOW__")]) >= {
            "AIRFLOW__CORE__EXECUTOR",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE",
            "AIRFLOW__CORE__FERNET_KEY",
        }, compose_keys
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

        init = subprocess.run(
            _argv(service_command("airflow-init")), env=env, cwd=REPO, capture_output=True, text=True, timeout=300
        )
        (logs / "init.log").write_text(init.stdout + init.stderr)
        assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
        assert (
            WDT["app_secret"] not in init.stdout + init.stderr
            and KINGDEE["app_secret"] not in init.stdout + init.stderr
        )

        def start(
            name: str, service: str, extra_env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()
        ) -> subprocess.Popen:
            log = stack.enter_context(open(logs / f"{name}.log", "w"))
            process = subprocess.Popen(
                [*_argv(service_command(service)), *extra_args],
                env={**env, **(extra_env or {})},
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(stop_group, process, 30)
            return process

        start("api-server", "airflow-apiserver")
        start("scheduler", "airflow-scheduler")
        start("dag-processor", "airflow-dag-processor")
        start("triggerer", "airflow-triggerer", {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())})
        flower = f"http://127.0.0.1:{free_port()}"
        # Flower's API answers only with a login (its UI does without)
        start(
            "flower",
            "flower",
            {
                "AIRFLOW__CELERY__FLOWER_HOST": "127.0.0.1",
                "AIRFLOW__CELERY__FLOWER_PORT": flower.rsplit(":", 1)[1],
                "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": f"admin:{password}",
            },
        )
        workers = {}
        for n in (1, 2):  # two hosts: each its own temp folder (no shared SQLite limiter) and log server port
            tmp = root / f"worker{n}-tmp"
            tmp.mkdir()
            # a Celery node name of its own, as each container's host name gives it under compose
            workers[f"worker{n}"] = start(
                f"worker{n}",
                "airflow-worker",
                {
                    "TMPDIR": str(tmp),
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                },
                ("--celery-hostname", f"worker{n}@%h"),
            )
        base = f"http://localhost:{port}"
        headers = airflow_headers(base, DAG_ID, lambda: ("admin", password), lambda: True, 180, logs)
        yield Deployment(base, headers, workers, wdt, kingdee, logs, (flower, ("admin", password)))
        for url in (broker, limiter):
            redis.Redis.from_url(url).flushdb()


def _argv(command: list[str]) -> list[str]:
    """A compose command as a local argv: `airflow …` and `python …` from this virtualenv."""
    head, *rest = command
    if head == "airflow":
        return [str(BIN / "airflow"), *rest]
    if head in ("python", "python3"):
        return [sys.executable, *rest]
    return command


def _worker_of(pid: int, workers: dict[str, subprocess.Popen]) -> str | None:
    """The worker whose process tree runs ``pid``."""
    import psutil

    try:
        chain = [psutil.Process(pid), *psutil.Process(pid).parents()]
    except psutil.NoSuchProcess:
        return None
    pids = {p.pid for p in chain}
    return next((name for name, process in workers.items() if process.pid in pids), None)


def test_a_backfill_survives_a_killed_worker_and_keeps_the_limits(deployment, dataset_of_deployment):
    d = deployment
    # Flower (the compose profile `flower`) sees both workers
    deadline, seen = time.monotonic() + 120, {}
    while time.monotonic() < deadline and len(seen) < 2:
        try:
            url, login = d.flower
            seen = requests.get(f"{url}/api/workers?refresh=1", auth=login, timeout=10).json()
        except (OSError, ValueError, requests.RequestException):
            pass
        time.sleep(2)
    assert sorted(name.split("@")[0] for name in seen) == ["worker1", "worker2"], seen
    d.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    began = time.monotonic()
    backfill = d.call(
        "POST",
        "/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": "2026-11-01T00:00:00+08:00",
            "to_date": f"2026-11-0{BACKFILL_DAYS}T00:00:00+08:00",
            "max_active_runs": 3,
            "reprocess_behavior": "none",
        },
    )
    runs = d.get(f"/dags/{DAG_ID}/dagRuns?run_type=backfill")["dag_runs"]
    assert len(runs) == BACKFILL_DAYS

    # one worker dies (SIGKILL, as a lost host or an OOM kill) while it is loading a window
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and time.monotonic() < deadline:
        loading = d.get(f"/dags/{DAG_ID}/dagRuns/~/taskInstances?task_id=load&state=running")["task_instances"]
        for ti in loading:
            worker = _worker_of(ti.get("pid") or 0, d.workers) if ti.get("pid") else None
            if worker:
                os.killpg(d.workers[worker].pid, signal.SIGKILL)
                killed = (worker, ti["dag_run_id"], ti["try_number"])
                break
        time.sleep(0.3)
    assert killed, "no load task was seen running on a worker"

    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        states = [r["state"] for r in d.get(f"/dags/{DAG_ID}/dagRuns?run_type=backfill")["dag_runs"]]
        if all(s in ("success", "failed") for s in states) and d.get(f"/backfills/{backfill['id']}")["completed_at"]:
            break
        time.sleep(3)
    took = time.monotonic() - began
    runs = d.get(f"/dags/{DAG_ID}/dagRuns?run_type=backfill&order_by=run_after")["dag_runs"]
    assert [r["state"] for r in runs] == ["success"] * BACKFILL_DAYS, [(r["dag_run_id"], r["state"]) for r in runs]

    # the killed try failed and was retried on the surviving worker; both tries' logs are readable
    _, run_id, first_try = killed
    tries = d.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load")
    assert tries["state"] == "success" and tries["try_number"] > first_try
    log = d.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load/logs/{tries['try_number']}?full_content=true")
    assert "existing" in json.dumps(log) or "created" in json.dumps(log)

    # Kingdee: exactly one bill per valid order of the five days
    from erpsync.kingdee.client import K3CloudClient, K3CloudConfig

    client = K3CloudClient(K3CloudConfig(server_url=d.kingdee.url, **KINGDEE))
    valid = {
        o["order_no"]
        for o in dataset_of_deployment.orders
        if o["status"] == 110 and o["order_no"] not in dataset_of_deployment.defects
    }
    bills = _bills(client)
    assert set(bills) == valid and all(len(ids) == 1 for ids in bills.values())

    # the limits held across both workers, as each server saw them
    throttle = d.wdt.gateway.throttle
    assert sum(throttle.refused.values()) == 0, throttle.refused
    assert max(throttle.peak.values()) <= WDT_PER_MINUTE
    faults = d.kingdee.emulator.faults
    assert faults.refused_busy == 0 and faults.peak_in_progress <= KINGDEE_SLOTS
    print(
        f"\ndeployment figures: {BACKFILL_DAYS} daily windows in {took:.0f} s "
        f"({BACKFILL_DAYS / took * 60:.1f} runs a minute, {took / BACKFILL_DAYS:.0f} s a window with 3 at a time); "
        f"WDT peak {max(throttle.peak.values())} calls in 60 s (limit {WDT_PER_MINUTE}); "
        f"Kingdee peak {faults.peak_in_progress} calls in flight (pool {KINGDEE_SLOTS}); killed {killed}"
    )


def _bills(client: Any) -> dict[str, set]:
    """The bills' internal ids (FID) by bill number (entry rows repeat both): one id each, or a bill was doubled."""
    fids: dict[str, set] = {}
    for number, fid in client.execute_bill_query("SAL_OUTSTOCK", ["FBillNo", "FID"]):
        fids.setdefault(number, set()).add(fid)
    return fids


@pytest.fixture(scope="module")
def dataset_of_deployment() -> Any:
    from emulators.dataset import build_dataset

    return build_dataset(SEED, ORDERS, START, DAYS)
