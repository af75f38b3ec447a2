"""`make demo`: WDT documents become Kingdee bills through Airflow, against the local emulators.

Starts both emulators on free loopback ports, prepares a local Airflow home (.airflow/, SQLite),
stores the two connections and runs every scheme of include/schemes with `airflow dags test`: the
sales stock-outs once per seeded day, then the flows that follow them (returns, which need their
sales in Kingdee first, and purchase receipts) over the seeded days and the week after, when the
last returns arrive. It prints one table per scheme with what happened to every document, and stops
the emulators. Kingdee's data lives in .demo/kingdee, so a second `make demo` finds every bill
already there and creates none.

    python scripts/demo.py [--transport qimen|openapi2]

``--transport openapi2`` reads WDT through its direct openapi2 endpoint instead of the Qimen gateway:
the same scheme and the same bills, but for 淘系 orders, which that endpoint does not return.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.scheme import Scheme, load_schemes
from erpsync.staging import RunFiles, read_parquet
from erpsync.steps.load import read_report, window_problems
from erpsync.windows import Window, parse_datetime

REPO = Path(__file__).resolve().parents[1]
SALES_DAG_ID = "wdt_kingdee_sales_outstock"
SEED, ORDERS, START, DAYS = 2026, 150, date(2026, 11, 1), 3
AIRFLOW_HOME = REPO / ".airflow"
DATA_DIR = REPO / ".demo"
LOG_DIR = AIRFLOW_HOME / "logs" / "demo"
PYTHON = sys.executable


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


@contextmanager
def emulator(name: str, data_dir: Path, args: list[str]) -> Iterator[str]:
    """Run ``python -m emulators.<name>`` on a free loopback port; yields the URL it serves."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with serving_command(
        [PYTHON, "-m", f"emulators.{name}", "--host", "127.0.0.1", "--port", "0", *args], data_dir / f"{name}.log"
    ) as url:
        yield url


@contextmanager
def serving_command(argv: list[str], log_path: Path) -> Iterator[str]:
    """Run an emulator's command line and yield the URL it prints on its first line; stop it after."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert proc.stdout is not None  # stdout=PIPE
            url = proc.stdout.readline().strip()
            if not url.startswith("http"):
                raise SystemExit(f"`{' '.join(argv[:3])}` did not start; see {log_path}")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def airflow(env: dict[str, str], *args: str, log: Path | None = None) -> bool:
    """Run an Airflow CLI command; its output goes to ``log`` (or is shown only if it fails).

    Returns False for a DAG run that ended red (`dags test` says "DagRun failed"): that is a result
    to show, not a failure of the demo."""
    command = [str(Path(PYTHON).parent / "airflow"), *args]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + result.stderr)
    if result.returncode and "DagRun failed" in result.stderr[-2000:] + result.stdout[-2000:]:
        return False
    if result.returncode:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")
    return True


def demo_credentials() -> tuple[dict[str, str], dict[str, str]]:
    """Credentials made up for each demo (the emulators accept whatever they are started with), in
    the real shapes: a Kingdee app id is ``<clientId>_<32 characters of standard base64>``, '+' and
    '/' included, as 24 random bytes encode."""
    wdt = {
        "app_key": f"demo{secrets.randbelow(10**8):08d}",
        "app_secret": secrets.token_hex(16),
        "sid": "demoshop",
        "openapi2_appkey": f"demoshop-{secrets.token_hex(3)}",
        "openapi2_appsecret": secrets.token_hex(16),
    }
    kingdee = {
        "acct_id": "65a0demo0001",
        "username": "erpsync",
        "app_id": f"{secrets.randbelow(10**6):06d}_{base64.b64encode(secrets.token_bytes(24)).decode('ascii')}",
        "app_secret": secrets.token_hex(16),
    }
    return wdt, kingdee


def airflow_env(home: Path) -> dict[str, str]:
    """The environment of an Airflow home for this repo."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Airflow 3.3's own .airflowignore reader logs a pathspec deprecation in every task log, and
        # `dags test` Starlette's test client and graphviz: none is ours to fix, all bury the useful lines
        "PYTHONWARNINGS": "ignore:GitWildMatchPattern:DeprecationWarning,ignore:Using `httpx` with `starlette.testclient`:UserWarning,"
        "ignore:Could not import graphviz:UserWarning",
        # the Kingdee app id carries the client secret: shown as *** by the API and UI, masked in logs
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "app_id",
        "GX_ANALYTICS_ENABLED": "false",
    }


def start_emulators(stack: ExitStack, data_dir: Path, transport: str = "qimen") -> dict[str, str]:
    """Both emulators on free loopback ports, with fresh credentials; the settings that reach them, by
    the names of .env (scripts/deploy_init.py turns them into the connections), WDT through ``transport``."""
    wdt, kingdee = demo_credentials()
    say(f"Starting the WDT emulator ({ORDERS} orders over {DAYS} days from {START}, seed {SEED})")
    wdt_url = stack.enter_context(
        emulator(
            "wdt",
            data_dir,
            [
                "--app-key",
                wdt["app_key"],
                "--app-secret",
                wdt["app_secret"],
                "--target-app-key",
                "21363512",
                "--openapi2-appkey",
                wdt["openapi2_appkey"],
                "--openapi2-appsecret",
                wdt["openapi2_appsecret"],
                "--sid",
                wdt["sid"],
                "--seed",
                str(SEED),
                "--orders",
                str(ORDERS),
                "--start",
                START.isoformat(),
                "--days",
                str(DAYS),
            ],
        )
    )
    say(f"  {wdt_url}")
    say(f"Starting the Kingdee emulator (data in {data_dir / 'kingdee'})")
    kingdee_url = stack.enter_context(
        emulator(
            "kingdee",
            data_dir,
            [
                "--acct-id",
                kingdee["acct_id"],
                "--username",
                kingdee["username"],
                "--app-id",
                kingdee["app_id"],
                "--app-secret",
                kingdee["app_secret"],
                "--data-dir",
                str(data_dir / "kingdee"),
                "--seed",
                str(SEED),
            ],
        )
    )
    say(f"  {kingdee_url}")
    if transport == "openapi2":  # the same emulator's direct endpoint, with its own identity
        wdt_settings = {
            "WDT_GATEWAY_URL": wdt_url.removesuffix("/router/qm") + "/openapi2/",
            "WDT_APP_KEY": wdt["openapi2_appkey"],
            "WDT_APP_SECRET": wdt["openapi2_appsecret"],
        }
    else:
        wdt_settings = {
            "WDT_GATEWAY_URL": wdt_url,
            "WDT_APP_KEY": wdt["app_key"],
            "WDT_APP_SECRET": wdt["app_secret"],
            "WDT_TARGET_APP_KEY": "21363512",
        }
    return {
        **wdt_settings,
        "WDT_TRANSPORT": transport,
        "WDT_SID": wdt["sid"],
        "WDT_MIN_INTERVAL_SECONDS": "0.2",
        "KINGDEE_URL": kingdee_url,
        "KINGDEE_ACCT_ID": kingdee["acct_id"],
        "KINGDEE_USERNAME": kingdee["username"],
        "KINGDEE_APP_ID": kingdee["app_id"],
        "KINGDEE_APP_SECRET": kingdee["app_secret"],
        "KINGDEE_LCID": "2052",
    }


def prepare_home(env: dict[str, str], settings: dict[str, str]) -> None:
    """What docker-compose.yaml's airflow-init does, by the same script: migrate the metadata database,
    import the pools, and store the connections of ``settings`` (none: left to the user)."""
    result = subprocess.run(
        [PYTHON, str(REPO / "scripts" / "deploy_init.py")],
        env={**env, **settings},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode:  # its output names variables and shows *** for secrets
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"scripts/deploy_init.py failed with exit code {result.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--transport",
        choices=("qimen", "openapi2"),
        default="qimen",
        help="how WDT is reached: the Qimen gateway (default) or the direct openapi2 endpoint",
    )
    args = parser.parse_args()
    DATA_DIR.mkdir(exist_ok=True)
    AIRFLOW_HOME.mkdir(exist_ok=True)
    env = airflow_env(AIRFLOW_HOME)
    staging_root = AIRFLOW_HOME / "staging"

    with ExitStack() as stack:
        settings = start_emulators(stack, DATA_DIR, args.transport)
        say(f"WDT is read through {args.transport}: {settings['WDT_GATEWAY_URL']}")
        secrets_used = [settings["WDT_APP_SECRET"], settings["KINGDEE_APP_SECRET"], settings["KINGDEE_APP_ID"]]
        say(f"Preparing the Airflow home {AIRFLOW_HOME.relative_to(REPO)}/ (SQLite)")
        prepare_home(env, settings)

        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(staging_root.as_uri())
        # a return is saved once its sale is in Kingdee (target.requires): the schemes that require
        # bills of other flows run after those flows
        schemes = sorted(load_schemes(), key=lambda s: (len(s.target.requires), s.dag_id))
        tables = []
        for scheme in schemes:
            windows = demo_windows(scheme)
            states: list[str] = []
            for window in windows:
                say(f"airflow dags test {scheme.dag_id}  window {window}")
                conf = json.dumps({"window_start": window.start.isoformat(), "window_end": window.end.isoformat()})
                started = time.monotonic()
                log = LOG_DIR / f"{scheme.dag_id}-{window.key}.log"
                ok = airflow(env, "dags", "test", scheme.dag_id, "--conf", conf, log=log)
                states.append("success" if ok else "failed")
                say(f"  {states[-1]} in {time.monotonic() - started:.1f} s; task logs in {log.relative_to(REPO)}")
            tables.append((scheme, [RunFiles(root, scheme.dag_id, w) for w in windows], windows, states))

        leaked = [log.name for log in LOG_DIR.glob("*.log") for s in secrets_used if s in log.read_text()]
        if leaked:
            raise SystemExit(f"a secret appears in the task logs {leaked}: this is a bug")

        client = K3CloudClient(
            K3CloudConfig(
                server_url=settings["KINGDEE_URL"],
                acct_id=settings["KINGDEE_ACCT_ID"],
                username=settings["KINGDEE_USERNAME"],
                app_id=settings["KINGDEE_APP_ID"],
                app_secret=settings["KINGDEE_APP_SECRET"],
            )
        )
        for scheme, runs, windows, states in tables:
            summarize(scheme, runs, windows, states)
        print(f"Task logs of each run: {LOG_DIR.relative_to(REPO)}/<dag_id>-<window>.log")
        print("Reports per window (under .airflow/staging/<dag_id>/window=…/):")
        print("  quality/docs/index.html   Great Expectations Data Docs")
        print("  quality/summary.json      rules broken, by rule")
        print("  quarantine.parquet        documents held back, with the rule and value")
        print("  load_report/              every document: created / existing / rejected (Kingdee id or message),")
        print("                            held (base data Kingdee lacks, or a return whose sale is not there yet),")
        print("                            quarantined / unmapped (the reason)")
        print()
        for scheme in schemes:
            form = scheme.target.form.form_id
            total = len(client.execute_bill_query(form, ["FID"]))
            say(
                f"Kingdee now holds {total} {form} bills ({scheme.dag_id}; one per valid document, however often the demo runs)"
            )


def demo_windows(scheme: Scheme) -> list[Window]:
    """Sales stock-outs: one window per day; they complete up to two days after they ship and are read on
    last-modified time, so two days past the last shipping day. Other flows: one window over the seeded
    days and the week after (returns arrive days after their sale)."""
    zone = scheme.settings.timezone
    day = lambda d: parse_datetime((START + timedelta(days=d)).isoformat(), "day", zone)  # noqa: E731
    if scheme.dag_id == SALES_DAG_ID:
        return [Window.of(day(d), day(d + 1), zone) for d in range(DAYS + 2)]
    return [Window.of(day(0), day(DAYS + 7), zone)]


def summarize(scheme: Scheme, runs: list[RunFiles], windows: list[Window], states: list[str]) -> None:
    print(f"\n{scheme.dag_id}: {scheme.source.api.method} → {scheme.target.form.form_id} ({scheme.target.form.label})")
    print(
        f"{f'window ({scheme.settings.timezone})':<24}{'run':>8}{'orders':>7}{'quarantined':>12}{'unmapped':>9}{'created':>8}{'existing':>9}{'rejected':>9}{'held':>6}"
    )
    widths = (7, 12, 9, 8, 9, 9, 6)
    totals = [0] * 7
    lines: list[str] = []
    for files, window, state in zip(runs, windows, states, strict=True):
        report = read_report(files)
        outcome = report["outcome"].value_counts()
        row = [
            len(read_parquet(files.orders)),
            *(int(outcome.get(o, 0)) for o in ("quarantined", "unmapped", "created", "existing", "rejected", "held")),
        ]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        span = window.start.format("YYYY-MM-DD") + (
            "" if window.end == window.start.add(days=1) else window.end.format("..MM-DD")
        )
        print(f"{span:<24}{state:>8}" + "".join(f"{v:>{w}}" for v, w in zip(row, widths, strict=True)))
        lines += [f"  {p.outcome:<11} {p.order_no}: {p.reason}" for p in window_problems(files)]
    print(f"{'total':<32}" + "".join(f"{v:>{w}}" for v, w in zip(totals, widths, strict=True)))
    if lines:
        print("Documents that did not become bills, and why (their windows end red: settings.load.on_problem: fail):")
        print("\n".join(lines))
    print()


if __name__ == "__main__":
    main()
