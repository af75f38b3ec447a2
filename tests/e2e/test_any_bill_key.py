"""A tenant whose Kingdee numbers its bills: ``FBillNo`` left empty, the WDT number kept in a custom field.

The sales scheme with ``FBillNo`` empty and ``bill_key: F_ora_Text_ckdh`` runs the plain steps over
five days, twice, while Kingdee loses a fifth of its replies (the save happened, the client never heard).
Every stock-out must end as exactly one bill: the look-up before saving and after an unknown outcome
has to ask for the scheme's key, because Kingdee's own numbers (its coding rule) say nothing about which
stock-out a bill is. A look-up by FBillNo would find nothing and save every stock-out again.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeTransientError
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.run import Run
from erpsync.scheme import LoadSettings
from erpsync.steps.extract import extract
from erpsync.steps.load import load, read_report
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.wdt.connector import WdtReader
from erpsync.windows import Window
from tests.conftest import KINGDEE, WDT, serving

pytestmark = pytest.mark.e2e

START = dt.date(2026, 11, 1)
DAYS = 5
KEY = "F_ora_Text_ckdh"


def _numbered_by_kingdee(data: dict) -> None:
    data["target"]["bill_key"] = KEY
    for row in data["target"]["mapping"]:
        if row["field"] == "FBillNo":
            row["value"] = ""  # not sent: Kingdee numbers the bill by its coding rule


def test_a_custom_bill_key_gives_one_bill_per_stockout_under_lost_replies(edited_scheme, tmp_path):
    from emulators.dataset import build_dataset
    from emulators.kingdee import make_server as kingdee_server
    from emulators.wdt import make_server as wdt_server

    scheme = edited_scheme(_numbered_by_kingdee).edited(
        "settings.load", LoadSettings(chunk_size=4, concurrency=2, rounds=10)
    )
    assert scheme.target.bill_key == KEY
    orders = 150
    first = pendulum.datetime(START.year, START.month, START.day, tz="Asia/Shanghai")
    wdt = wdt_server("127.0.0.1", 0, **WDT, seed=5, orders=orders, start=START, days=DAYS, now=first.add(days=10))
    kingdee = kingdee_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=5, lost_response_rate=0.2)
    with serving(wdt) as wdt, serving(kingdee) as kingdee:
        reader = WdtReader(
            WdtClient(WdtConfig(**WDT, url=wdt.url, min_interval_seconds=0, rate_limit_url=str(tmp_path / "r.db"))),
            scheme.source,
        )
        client = K3CloudClient(K3CloudConfig(server_url=kingdee.url, **KINGDEE, backoff_seconds=0.01))
        unknown = [0]  # saves whose reply was lost: the look-up by the key decided them
        save = client.batch_save

        def counted(*args, **kwargs):
            try:
                return save(*args, **kwargs)
            except KingdeeTransientError:
                unknown[0] += 1
                raise

        client.batch_save = counted
        root = ObjectStoragePath((tmp_path / "staging").as_uri())
        decided: dict[str, str] = {}
        for _pass in range(2):  # the whole period twice: the second pass must add nothing
            for day in range(DAYS + 2):  # the days, then the two its last orders may complete on
                window = Window(first.add(days=day), first.add(days=day + 1))
                run = Run.open(scheme, window, root)
                for _attempt in range(8):  # Airflow's retries
                    try:
                        extract(run, reader)
                        validate(run)
                        transform(run)
                        load(run, KingdeeTarget(client))
                        break
                    except KingdeeTransientError:
                        continue
                else:
                    pytest.fail(f"window {window} never loaded")
                report = read_report(run.files)
                decided.update({r.bill_no: r.outcome for r in report.dropna(subset=["bill_no"]).itertuples()})
        rows = client.execute_bill_query("SAL_OUTSTOCK", ["FBillNo", KEY])

    per_stockout = Counter(str(key) for _number, key in rows)
    assert per_stockout and max(per_stockout.values()) == 1, [k for k, n in per_stockout.items() if n > 1][:5]
    # Kingdee numbered every bill itself: its numbers are not the stock-out numbers
    assert all(number and number != key for number, key in rows)
    loaded = {no for no, outcome in decided.items() if outcome in ("created", "existing")}
    assert set(per_stockout) == loaded
    dataset = build_dataset(5, orders, START, DAYS)
    valid = {o["order_no"] for o in dataset.orders if o["status"] == 110 and o["order_no"] not in dataset.defects}
    assert loaded == valid
    assert unknown[0] >= 1  # replies were lost, and decided by looking the bills up
