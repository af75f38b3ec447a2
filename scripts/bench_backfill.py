"""End to end in a running Airflow, at the APIs' bounds: one long window, hourly backfill runs, one bill
per call, and a small window against Airflow's own floor.

    .venv/bin/python scripts/bench_backfill.py [--orders-per-day 20000] [--days 3] [--parallel 3]
        [--single-hours 2] [--small-runs 3] [--small-minutes 1] [--modes long,hourly,single,small]

Airflow starts as `make airflow` starts it (`airflow standalone`: LocalExecutor on an embedded
PostgreSQL) in a temporary home, with WDT's emulator at 600 calls a minute and 80 ms a call (the
connection's own limit to match: 10 calls a second) and one Kingdee emulator per mode at 50 ms a call,
10 ms a bill and 4 calls at once. The sales stock-out scheme runs in copies, one per mode, each with
its own Kingdee (``on_problem: warn``: the data set's bad orders leave the runs green). Stock-outs
complete minutes after they ship (``--late-rate 0``), so each window holds its own orders:

- **long**: one run over the whole days (``window_start``/``window_end``);
- **hourly**: the same days as hourly backfill runs (``POST /api/v2/backfills``), ``--parallel`` at once;
- **single**: one bill per BatchSave call, one call at a time, as most integrations post, over the
  first ``--single-hours`` of the first day's shipping from 09:00 (over all the days it would take the
  better part of an hour);
- **small**: ``--small-runs`` windows of ``--small-minutes`` without look-back (one minute: under 100
  orders at 20,000 a day), one at a time, set against as many runs of a DAG of five no-op tasks in the
  same Airflow.

For each mode it prints the orders per second end to end (Kingdee bills made over the wall time from
the first run's start to the last run's end) against min(WDT bound, Kingdee bound), Airflow's seconds
per run (a run's wall time minus its steps' own time, which each task reports in its XCom), each
step's total seconds and the highest peak RSS of its tasks, and Kingdee's bill count against the
orders the load reports say are there (one bill per valid order, none twice).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from airflow_local import api_headers, credentials, live_env, postgres, standalone, stop_group
from demo import REPO, demo_credentials, emulator, prepare_home, say
from deploy_init import kingdee_connection
from erpsync.kingdee.client import K3CloudClient, K3CloudConfig

START = date(2026, 11, 2)
SHANGHAI = "+08:00"
PAGE_SIZE, WDT_CALLS_PER_SECOND = 100, 10  # the scheme's page size; WDT's 600 calls a minute
KINGDEE_LATENCY_S, KINGDEE_PER_BILL_S, KINGDEE_CONCURRENT = 0.05, 0.01, 4
STEPS = ("extract", "validate", "transform", "load")
NOOP_DAG = "bench_noop"
NOOP_FILE = '''
"""Five no-op tasks in a chain, as many as a scheme's DAG has: the floor of a run in this Airflow."""
import pendulum
from airflow.sdk import DAG, chain, task

with DAG("bench_noop", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    @task
    def noop() -> None:
        pass

    chain(*[noop.override(task_id=f"noop_{n}")() for n in range(5)])
'''


@dataclass
class Mode:
    name: str
    dag_id: str
    connection: str
    edit: dict[str, Any] = field(default_factory=dict)  # dotted scheme keys -> values


@dataclass
class Figures:
    runs: list[dict[str, Any]]  # the REST API's dag runs, each with its load XCom under "xcom"
    began: datetime
    ended: datetime

    @property
    def seconds(self) -> float:
        return (self.ended - self.began).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders-per-day", type=int, default=20000, help="stock-outs WDT ships each day")
    parser.add_argument("--days", type=int, default=3, help="days from 2026-11-02 (the long run's window)")
    parser.add_argument("--parallel", type=int, default=3, help="hourly backfill runs at once")
    parser.add_argument("--single-hours", type=int, default=2, help="hours loaded one bill per call")
    parser.add_argument("--small-runs", type=int, default=3, help="small windows (and no-op runs) to time")
    parser.add_argument(
        "--small-minutes", type=int, default=1, help="a small window's length (20,000 a day: about 70 orders a minute)"
    )
    parser.add_argument("--modes", default="long,hourly,single,small", help="which modes, comma-separated")
    parser.add_argument("--keep", type=Path, default=None, help="keep the Airflow home here (default: removed)")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.modes.split(",") if m.strip()]
    modes = [
        Mode("long", "bench_long", "kingdee_long"),
        Mode("hourly", "bench_hourly", "kingdee_hourly", {"settings.max_active_runs": args.parallel}),
        Mode(
            "single", "bench_single", "kingdee_single", {"settings.load.chunk_size": 1, "settings.load.concurrency": 1}
        ),
        # no look-back: the window holds only its own orders (a 2 h look-back re-reads 2 hours each run)
        Mode("small", "bench_small", "kingdee_small", {"source.lookback": "0"}),
    ]
    modes = [m for m in modes if m.name in chosen]
    home = Path(tempfile.mkdtemp(prefix="erpsync-bench-backfill-")) if args.keep is None else args.keep.resolve()
    home.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            bench(stack, home, args, modes)
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


def bench(stack: ExitStack, home: Path, args: argparse.Namespace, modes: list[Mode]) -> None:
    wdt, kingdee = demo_credentials()
    orders = args.orders_per_day * args.days
    say(f"WDT emulator: {orders} stock-outs over {args.days} days from {START}, 600 calls/min, 80 ms a call")
    wdt_url = stack.enter_context(
        emulator(
            "wdt",
            home / "emulators",
            [
                *("--app-key", wdt["app_key"], "--app-secret", wdt["app_secret"], "--sid", wdt["sid"]),
                *("--target-app-key", "21363512", "--seed", "2026", "--orders", str(orders)),
                *("--start", START.isoformat(), "--days", str(args.days)),
                *("--latency-ms", "80", "--throttle-per-minute", "600"),
                # stock-outs complete minutes after they ship, so each window holds the day's own orders
                *("--late-rate", "0"),
            ],
        )
    )
    identity = {"KINGDEE_ACCT_ID": kingdee["acct_id"], "KINGDEE_USERNAME": kingdee["username"]}
    identity |= {"KINGDEE_APP_ID": kingdee["app_id"], "KINGDEE_APP_SECRET": kingdee["app_secret"]}
    kingdee_urls: dict[str, str] = {}
    for mode in modes:  # one Kingdee each: every mode creates its bills afresh
        kingdee_urls[mode.name] = stack.enter_context(
            emulator(
                "kingdee",
                home / "emulators" / mode.name,
                [
                    *("--acct-id", kingdee["acct_id"], "--username", kingdee["username"]),
                    *("--app-id", kingdee["app_id"], "--app-secret", kingdee["app_secret"]),
                    *("--data-dir", str(home / "emulators" / mode.name / "kingdee"), "--seed", "2026"),
                    *("--latency-ms", "50", "--per-bill-ms", "10", "--max-concurrent", str(KINGDEE_CONCURRENT)),
                ],
            )
        )
    dags = write_dags(home, modes)
    port = free_port()
    env = live_env(home, port, postgres(stack, home))
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    env["AIRFLOW__CORE__PARALLELISM"] = "16"
    for mode in modes:
        connection = kingdee_connection({**identity, "KINGDEE_URL": kingdee_urls[mode.name]})
        env[f"AIRFLOW_CONN_{mode.connection.upper()}"] = json.dumps(connection)
    settings = {"WDT_GATEWAY_URL": wdt_url, "WDT_APP_KEY": wdt["app_key"], "WDT_APP_SECRET": wdt["app_secret"]}
    settings |= {"WDT_SID": wdt["sid"], "WDT_TARGET_APP_KEY": "21363512", "WDT_MIN_INTERVAL_SECONDS": "0.1"}
    prepare_home(env, settings)
    say(f"airflow standalone in {home} (UI http://localhost:{port})")
    log = open(home / "standalone.log", "w")
    stack.callback(log.close)
    process = standalone(env, stdout=log, stderr=log)
    stack.callback(stop_group, process, 60)
    base = f"http://localhost:{port}"
    headers = api_headers(base, modes[0].dag_id, lambda: credentials(home), lambda: process.poll() is None, 300)
    if headers is None:
        raise SystemExit(f"Airflow did not come up; see {log.name}")
    api = Api(base, headers)
    for mode in modes:
        # as many slots as the server takes calls at once: a load holds settings.load.concurrency of them
        pool = {"name": mode.connection, "slots": KINGDEE_CONCURRENT, "include_deferred": False}
        api.post("/api/v2/pools", pool, ok=(200, 201, 409))
    wdt_bound = PAGE_SIZE * WDT_CALLS_PER_SECOND  # orders a second
    kingdee_bound = KINGDEE_CONCURRENT * 100 / (KINGDEE_LATENCY_S + 100 * KINGDEE_PER_BILL_S)  # bills a second
    bound = min(wdt_bound, kingdee_bound)
    say(f"bounds: WDT {wdt_bound} orders/s (pages of 100), Kingdee {kingdee_bound:.0f} bills/s; min {bound:.0f}/s")
    first, last = f"{START.isoformat()}T00:00:00{SHANGHAI}", f"{START + timedelta(days=args.days)}T00:00:00{SHANGHAI}"
    # warehouses ship from 09:00: the one-bill-per-call mode takes the first hours from then
    single = (
        f"{START.isoformat()}T09:00:00{SHANGHAI}",
        f"{START.isoformat()}T{9 + args.single_hours:02d}:00:00{SHANGHAI}",
    )
    for mode in modes:
        api.unpause(mode.dag_id)
    if "small" in {m.name for m in modes}:
        api.unpause(NOOP_DAG)
    api.settle([m.dag_id for m in modes])  # the scheduled run each unpaused hourly DAG makes for the last hour
    results: dict[str, tuple[Figures, int]] = {}
    for mode in modes:
        say(f"mode {mode.name}: {mode.dag_id}")
        if mode.name == "long":
            figures = api.manual_runs(mode.dag_id, [(first, last)])
        elif mode.name == "hourly":
            figures = api.backfill(mode.dag_id, first, last, args.parallel)
        elif mode.name == "single":
            figures = api.manual_runs(mode.dag_id, [single])
        else:
            ten, m = datetime.fromisoformat(f"{START.isoformat()}T10:00:00{SHANGHAI}"), args.small_minutes
            windows: list[tuple[str | None, str | None]] = [
                ((ten + timedelta(minutes=m * n)).isoformat(), (ten + timedelta(minutes=m * n + m)).isoformat())
                for n in range(args.small_runs)
            ]
            figures = api.manual_runs(mode.dag_id, windows)
        results[mode.name] = (figures, count_bills(kingdee_urls[mode.name], kingdee))
        report(mode.name, *results[mode.name], bound)
    if "small" in results:
        noop = api.manual_runs(NOOP_DAG, [(None, None)] * args.small_runs)
        floor = statistics.median(run_seconds(r) for r in noop.runs)
        small = statistics.median(run_seconds(r) for r in results["small"][0].runs)
        say(
            f"small window: median run {small:.1f} s; five no-op tasks: median {floor:.1f} s; ratio {small / floor:.2f}"
        )
    if "long" in results and "single" in results and rate(*results["single"]):
        long_rate = rate(*results["long"])
        single_rate = rate(*results["single"])
        say(f"long run against one bill per call: {long_rate / single_rate:.1f}x")


def write_dags(home: Path, modes: list[Mode]) -> Path:
    """A DAG folder with a copy of the sales scheme per mode (its own dag_id, Kingdee connection and
    settings) and the no-op DAG."""
    include = home / "include"
    shutil.copytree(REPO / "include", include)
    for path in (include / "schemes").glob("*.yaml"):
        path.unlink()
    source = yaml.safe_load((REPO / "include" / "schemes" / "sales_outstock.yaml").read_text(encoding="utf-8"))
    for mode in modes:
        data = json.loads(json.dumps(source))
        data["name"], data["dag_id"] = mode.dag_id, mode.dag_id
        data["target"]["connection"] = mode.connection
        data["settings"]["load"]["on_problem"] = "warn"
        for dotted, value in mode.edit.items():
            *parents, leaf = dotted.split(".")
            holder = data
            for key in parents:
                holder = holder[key]
            holder[leaf] = value
        (include / "schemes" / f"{mode.dag_id}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    dags = home / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "bench_schemes.py").write_text(
        # "airflow" and "dag" in the text: what Airflow's safe mode looks for before it parses a file
        '"""Airflow DAGs of the benchmark schemes."""\n\nfrom pathlib import Path\n\nfrom erpsync.dag_factory import build_dags\n\n'
        f"globals().update(build_dags(Path({str(include)!r})))\n",
        encoding="utf-8",
    )
    (dags / "bench_noop.py").write_text(NOOP_FILE, encoding="utf-8")
    return dags


class Api:
    """The few calls of Airflow's REST API the benchmark makes."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers

    def get(self, path: str) -> Any:
        reply = requests.get(self.base + path, headers=self.headers, timeout=60)
        reply.raise_for_status()
        return reply.json()

    def post(self, path: str, body: dict[str, Any], ok: tuple[int, ...] = (200, 201)) -> Any:
        reply = requests.post(self.base + path, json=body, headers=self.headers, timeout=60)
        if reply.status_code not in ok:
            raise SystemExit(f"POST {path}: {reply.status_code} {reply.text[:500]}")
        return reply.json()

    def unpause(self, dag_id: str) -> None:
        reply = requests.patch(
            f"{self.base}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=self.headers, timeout=60
        )
        reply.raise_for_status()

    def settle(self, dag_ids: list[str], timeout: float = 600) -> None:
        """Wait until none of the DAGs has a run queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = sum(
                self.get(f"/api/v2/dags/{d}/dagRuns?state=queued&state=running")["total_entries"] for d in dag_ids
            )
            if not busy:
                return
            time.sleep(2)
        raise SystemExit("runs did not finish")

    def manual_runs(self, dag_id: str, windows: list[tuple[str | None, str | None]]) -> Figures:
        """One manual run per window, one after another."""
        runs = []
        for start, end in windows:
            conf = {"window_start": start, "window_end": end} if start else {}
            run = self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
            runs.append(self.finished(dag_id, run["dag_run_id"]))
        return self.figures(dag_id, runs)

    def backfill(self, dag_id: str, first: str, last: str, parallel: int) -> Figures:
        """Hourly runs over ``[first, last)`` as one backfill, ``parallel`` at once."""
        end = datetime.fromisoformat(last) - timedelta(hours=1)  # the backfill's dates are the runs' starts
        created = self.post(
            "/api/v2/backfills",
            {"dag_id": dag_id, "from_date": first, "to_date": end.isoformat(), "max_active_runs": parallel},
        )
        while self.get(f"/api/v2/backfills/{created['id']}")["completed_at"] is None:
            time.sleep(5)
        runs = self.get(f"/api/v2/dags/{dag_id}/dagRuns?run_type=backfill&limit=1000")["dag_runs"]
        return self.figures(dag_id, runs)

    def finished(self, dag_id: str, run_id: str) -> dict[str, Any]:
        while True:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return dict(run)
            time.sleep(1)

    def figures(self, dag_id: str, runs: list[dict[str, Any]]) -> Figures:
        for run in runs:
            if run["state"] != "success":
                raise SystemExit(f"{dag_id} run {run['dag_run_id']} ended {run['state']}")
            if dag_id != NOOP_DAG:
                path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/load/xcomEntries/return_value"
                run["xcom"] = self.get(path)["value"]
        return Figures(
            runs,
            min(_time(r["start_date"]) for r in runs),
            max(_time(r["end_date"]) for r in runs),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_seconds(run: dict[str, Any]) -> float:
    return (_time(run["end_date"]) - _time(run["start_date"])).total_seconds()


def count_bills(url: str, identity: dict[str, str]) -> int:
    """SAL_OUTSTOCK bills in a Kingdee, and a check that no bill number is there twice."""
    config = K3CloudConfig(
        server_url=url,
        acct_id=identity["acct_id"],
        username=identity["username"],
        app_id=identity["app_id"],
        app_secret=identity["app_secret"],
    )
    client = K3CloudClient(config)
    numbers = [row[0] for row in client.execute_bill_query("SAL_OUTSTOCK", ["FBillNo"], "", "FBillNo")]
    if len(set(numbers)) != len(numbers):
        raise SystemExit(f"{url}: {len(numbers) - len(set(numbers))} bill numbers are there twice")
    return len(numbers)


def rate(figures: Figures, bills: int) -> float:
    return bills / figures.seconds


def report(name: str, figures: Figures, bills: int, bound: float) -> None:
    loaded = sum(int(r["xcom"].get("created", 0)) for r in figures.runs)
    overheads = []
    step_seconds = dict.fromkeys(STEPS, 0.0)
    step_rss = dict.fromkeys(STEPS, 0)
    for run in figures.runs:
        steps = run["xcom"].get("steps", {})
        own = sum(steps.get(s, {}).get("seconds", 0.0) for s in STEPS)
        overheads.append(run_seconds(run) - own)
        for s in STEPS:
            step_seconds[s] += steps.get(s, {}).get("seconds", 0.0)
            step_rss[s] = max(step_rss[s], steps.get(s, {}).get("peak_rss_mb", 0))
    per_second = bills / figures.seconds
    print(
        f"{name}: {len(figures.runs)} runs, {figures.seconds:.1f} s wall; {bills} bills in Kingdee "
        f"({loaded} created by the runs, none twice); {per_second:.0f} orders/s end to end = "
        f"{100 * per_second / bound:.0f}% of the bound"
    )
    print(
        f"  Airflow's seconds per run (wall minus steps): median {statistics.median(overheads):.1f}, "
        f"max {max(overheads):.1f}"
    )
    print(
        "  steps: " + ", ".join(f"{s} {step_seconds[s]:.1f} s (peak RSS {step_rss[s]} MB)" for s in STEPS), flush=True
    )


if __name__ == "__main__":
    main()
