"""Never zero, never two, with every WDT fault on: the runs of a day and its look-back match the truth.

The WDT emulator's clock moves window by window, as the schedule would run: orders ship, complete
hours or days later (late orders), change while they are paged (churn), and the gateway answers
5xx and throttles. Each window runs the plain steps (extract, validate, transform, load) against
both emulators; a run that fails is run again, as Airflow's retries would. After the day and the
completions that follow it, Kingdee holds exactly one bill for every order of the day that WDT has
completed, minus the defective ones the pipeline holds back or Kingdee refuses, for several seeds.
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeTransientError
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.mapping.compile import compile_mapping
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, LoadSettings, load_scheme
from erpsync.steps.extract import extract
from erpsync.steps.load import load, read_report
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig, WdtTransientError
from erpsync.wdt.connector import WdtReader
from erpsync.wdt.paging import PagingError
from erpsync.windows import Window
from tests.conftest import KINGDEE, WDT, serving

pytestmark = pytest.mark.e2e

# pages of 5 orders: several pages per window, so churn moves orders between them while they are read
_SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
SCHEME = _SCHEME.edited("source.pagination.page_size", 5).edited(
    "settings.load", LoadSettings(chunk_size=10, concurrency=2, rounds=6)
)
DAY = date(2026, 11, 2)
STEP = dt.timedelta(hours=6)  # a coarser schedule than hourly keeps the test short; the logic is the same


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_a_day_under_every_fault_loads_exactly_the_completed_orders(seed, tmp_path):
    from emulators.kingdee import make_server as kingdee_server
    from emulators.wdt import make_server as wdt_server

    fake_epoch = [pendulum.now().timestamp()]  # the gateway's clock: waiting on a throttle moves it

    def sleep(seconds: float) -> None:
        fake_epoch[0] += seconds

    first = pendulum.datetime(DAY.year, DAY.month, DAY.day, tz="Asia/Shanghai")
    wdt = wdt_server(
        **WDT,
        seed=seed,
        orders=120,
        start=DAY - dt.timedelta(days=1),
        days=3,
        error_rate=0.1,
        throttle_per_minute=5,
        churn_rate=0.3,
        late_rate=0.5,
        renumber_rate=0.2,
        timestamp_tolerance_s=10**9,
        clock=lambda: fake_epoch[0],
        now=first,
    )
    kingdee = kingdee_server(
        "127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=seed, lost_response_rate=0.1, error_rate=0.05
    )
    with serving(wdt) as wdt, serving(kingdee) as kingdee:
        reader = WdtClient(
            WdtConfig(
                **WDT,
                url=wdt.url,
                min_interval_seconds=0,
                backoff_seconds=0.01,
                throttle_pause_seconds=20,
                rate_limit_url=str(tmp_path / "rate.sqlite"),
            ),
            clock=lambda: fake_epoch[0],
            sleep=sleep,
        )
        writer = K3CloudClient(
            K3CloudConfig(server_url=kingdee.url, **KINGDEE, backoff_seconds=0.01, max_backoff_seconds=0.02)
        )
        mapping = compile_mapping(SCHEME)
        root = ObjectStoragePath((tmp_path / "staging").as_uri())
        defective: set[str] = set()

        start = first
        while start < first.add(days=3):  # the day, then the two days its orders may complete on
            window = Window(start, start + STEP)
            wdt.emulator.set_now(window.end.add(minutes=5))  # the run starts just after its window
            run = Run.open(SCHEME, window, root, run_id="drill", mapping=mapping)
            files = run.files
            for _attempt in range(6):  # Airflow's retries
                try:
                    extract(run, WdtReader(reader, SCHEME.source))
                    validate(run)
                    transform(run)
                    load(run, KingdeeTarget(writer))
                    break
                except (WdtTransientError, PagingError, KingdeeTransientError):
                    continue
            else:
                pytest.fail(f"window {window} never succeeded")
            report = read_report(files)
            defective |= set(
                report.loc[report["outcome"].isin(["rejected", "held", "quarantined", "unmapped"]), "order_id"]
            )
            start = window.end

        assert reader.retries and reader.throttled_seconds  # the faults did happen
        truth = wdt.emulator.ground_truth(first, first.add(days=1))
        expected = {number for sid, number in truth.items() if sid not in defective}
        rows = writer.execute_bill_query("SAL_OUTSTOCK", ["FID", "FBillNo", "FDate"])
    numbers = [number for _fid, number, _when in rows]
    assert len(numbers) == len(set(numbers))  # never two
    assert truth and expected
    day_bills = {number for _fid, number, when in rows if str(when)[:10] == DAY.isoformat()}
    assert day_bills == expected, (sorted(expected - day_bills), sorted(day_bills - expected))
