"""`make airflow`: the real Airflow UI on this machine, on an embedded PostgreSQL, ready to backfill.

    .venv/bin/python scripts/airflow_local.py [--emulators] [--port 8080]

Starts PostgreSQL from the `pgserver` package in `.airflow-live/pg` (no system PostgreSQL needed;
Airflow refuses concurrent backfills on SQLite), migrates Airflow's metadata database there, imports
the pools and runs `airflow standalone` (scheduler, dag-processor, triggerer, api-server) with the
settings a user of these schemes wants: naive dates (backfill `--from-date`/`--to-date`, the trigger
form) in Asia/Shanghai, "Test connection" enabled, staging under `.airflow-live/staging`. With
`--emulators` both emulators start too and the connections `wdt_default`/`kingdee_default` point at
them; without it, add your real connections in the UI. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from demo import REPO, airflow_env, prepare_home, say, start_emulators

DEFAULT_HOME = REPO / ".airflow-live"


def postgres(stack: ExitStack, home: Path) -> str:
    """An embedded PostgreSQL server (stopped when we exit) and the SQLAlchemy URL of its `airflow` database."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(home))  # pgserver's platformdirs warns without it
    import pgserver

    server = pgserver.get_server(home / "pg", cleanup_mode="stop")
    stack.callback(server.cleanup)
    if "airflow" not in server.psql("SELECT datname FROM pg_database;"):
        server.psql("CREATE DATABASE airflow;")
    socket_dir = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
    return f"postgresql+psycopg2://postgres@/airflow?host={socket_dir}"


def live_env(home: Path, port: int, database: str) -> dict[str, str]:
    """The environment of `airflow standalone` in ``home`` on ``database``, its UI on ``port``."""
    return {
        **airflow_env(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",  # backfill dates and naive times: the schemes' zone
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__ERPSYNC__STAGING_ROOT": (home / "staging").as_uri(),
        "AIRFLOW__API__PORT": str(port),
        # task workers reach the api-server here (the default assumes port 8080); report links too
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone runs `airflow …`
    }


def standalone(env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
    """`airflow standalone` (scheduler, dag-processor, triggerer, api-server) in its own process group:
    stopped, it leaves its workers and api-server behind, so the group is what to stop."""
    airflow = str(Path(sys.executable).parent / "airflow")
    return subprocess.Popen([airflow, "standalone"], env=env, cwd=REPO, start_new_session=True, **popen)


def stop_group(process: subprocess.Popen[Any], grace: float = 5) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its group; SIGKILL what is left of the
    group after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, or the group never empties
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def credentials(home: Path) -> tuple[str, str]:
    """(user, password) the api-server generates as it starts; OSError/ValueError until it has."""
    return next(iter(json.loads((home / "simple_auth_manager_passwords.json.generated").read_text()).items()))


def api_headers(
    base: str, dag_id: str, login: Callable[[], tuple[str, str]], alive: Callable[[], bool], timeout: float
) -> dict[str, str] | None:
    """REST headers (a bearer token) of a live Airflow once its api-server answers and knows ``dag_id``;
    None if it does not within ``timeout`` or ``alive()`` turns False. ``login()`` gives (user, password)
    or raises OSError, ValueError or StopIteration while they are not there yet."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            user, password = login()
            token = requests.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=5)
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            if requests.get(f"{base}/api/v2/dags/{dag_id}", headers=headers, timeout=5).status_code == 200:
                return headers
        except (OSError, ValueError, KeyError, StopIteration, requests.RequestException):
            pass
        time.sleep(2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulators", action="store_true", help="start both emulators and connect to them")
    parser.add_argument("--port", type=int, default=8080, help="the UI's port")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the Airflow home (default .airflow-live/)")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = live_env(home, args.port, postgres(stack, home))
        say(f"Airflow home {home}/ on PostgreSQL ({env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']})")
        prepare_home(env, start_emulators(stack, home / "emulators") if args.emulators else {})
        say(
            f"airflow standalone: the UI on http://localhost:{args.port}, "
            f"user admin, password in {home}/simple_auth_manager_passwords.json.generated"
        )
        process = standalone(env)
        stopping = []

        def stop(signum: int, frame: object) -> None:  # Ctrl-C or a service manager: stop Airflow, then PostgreSQL
            stopping.append(signum)
            os.killpg(process.pid, signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        process.wait()
        stop_group(process)  # whatever of the group is left
        say("Airflow stopped" if stopping else f"airflow standalone ended with exit code {process.returncode}")


if __name__ == "__main__":
    main()
