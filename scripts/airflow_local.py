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
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulators", action="store_true", help="start both emulators and connect to them")
    parser.add_argument("--port", type=int, default=8080, help="the UI's port")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the Airflow home (default .airflow-live/)")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = {
            **airflow_env(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres(stack, home),
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",  # backfill dates and naive times: the schemes' zone
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__ERPSYNC__STAGING_ROOT": (home / "staging").as_uri(),
            "AIRFLOW__API__PORT": str(args.port),
            # task workers reach the api-server here (the default assumes port 8080); report links too
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{args.port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://localhost:{args.port}",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone runs `airflow …`
        }
        say(f"Airflow home {home}/ on PostgreSQL ({env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']})")
        prepare_home(env, start_emulators(stack, home / "emulators") if args.emulators else {})
        say(
            f"airflow standalone: the UI on http://localhost:{args.port}, "
            f"user admin, password in {home}/simple_auth_manager_passwords.json.generated"
        )
        # its own process group: `standalone` leaves its workers and api-server behind when it is stopped
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "standalone"], env=env, cwd=REPO, start_new_session=True
        )
        stopping = []

        def stop(signum: int, frame: object) -> None:  # Ctrl-C or a service manager: stop Airflow, then PostgreSQL
            stopping.append(signum)
            os.killpg(process.pid, signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        process.wait()
        try:
            os.killpg(process.pid, signal.SIGTERM)  # whatever of the group is left
            time.sleep(5)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        say("Airflow stopped" if stopping else f"airflow standalone ended with exit code {process.returncode}")


if __name__ == "__main__":
    main()
