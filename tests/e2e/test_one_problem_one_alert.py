"""One problem, one red window, one alert: a backfill of hourly windows with a two-hour look-back reads
a quarantined stock-out (last modified 2026-11-02 18:25:17) in three windows; only one of them may be
red for it, and only one alert may name it, whichever order the backfill runs the windows in."""

from __future__ import annotations

import json

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.connector import KingdeeTarget
from erpsync.policy import WindowIncomplete, finish_window
from erpsync.run import Run
from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.steps.extract import extract
from erpsync.steps.load import load
from erpsync.steps.transform import transform
from erpsync.steps.validate import validate
from erpsync.wdt.client import WdtClient, WdtConfig
from erpsync.wdt.connector import WdtReader
from erpsync.windows import Window
from tests.conftest import KINGDEE, WDT
from tests.erpsync.test_alerts import receiver, robots  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

QUARANTINED = "CK2026110100025"
HOURS = [pendulum.datetime(2026, 11, 2, h, tz="Asia/Shanghai") for h in range(17, 22)]


def _backfill(scheme, wdt_emulator, kingdee_emulator, root, hours, tmp_path) -> dict[str, dict]:
    """Run each hourly window's steps and its end-of-window policy: {window key: outcome}."""
    reader = WdtReader(
        WdtClient(
            WdtConfig(**WDT, url=wdt_emulator.url, min_interval_seconds=0, rate_limit_url=str(tmp_path / "r.db"))
        ),
        scheme.source,
    )
    writer = KingdeeTarget(K3CloudClient(K3CloudConfig(server_url=kingdee_emulator.url, **KINGDEE)))
    ended = {}
    for start in hours:
        run = Run.open(scheme, Window(start, start.add(hours=1)), root, run_id=f"backfill__{start.isoformat()}")
        extract(run, reader)
        validate(run)
        transform(run)
        result = load(run, writer)
        try:
            counts = finish_window(run, result)
            state = "success"
        except WindowIncomplete:
            counts, state = {}, "failed"
        finished = json.loads(run.files.finished.read_text())
        ended[run.window.key] = {"state": state, "counts": counts, **finished}
    return ended


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
def test_a_backfill_makes_one_red_window_for_one_quarantined_order(wdt_emulator, kingdee_emulator, tmp_path, backwards):
    scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    hours = list(reversed(HOURS)) if backwards else HOURS
    ended = _backfill(scheme, wdt_emulator, kingdee_emulator, root, hours, tmp_path)

    red = [key for key, e in ended.items() if e["state"] == "failed"]
    reporting = [key for key, e in ended.items() if e["reported"]]
    knowing = [key for key, e in ended.items() if e["known"]]
    assert len(red) == 1 and red == reporting, ended
    assert len(knowing) == 2  # the two later (or, backwards, earlier) windows that read it again
    first = "20261102T180000_20261102T190000" if not backwards else "20261102T200000_20261102T210000"
    assert red == [first]
    assert all(
        e["counts"]["known_problems"] == 1 and e["counts"]["problems"] == 0 for k, e in ended.items() if k in knowing
    )

    # clearing the red window runs it again: still red, as nothing was fixed
    again = _backfill(
        scheme, wdt_emulator, kingdee_emulator, root, [pendulum.parse(first[:15], tz="Asia/Shanghai")], tmp_path
    )
    assert again[first]["state"] == "failed"


def test_with_on_problem_warn_the_robots_hear_of_it_once(wdt_emulator, kingdee_emulator, tmp_path, robots, monkeypatch):  # noqa: F811
    scheme = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
    settings = scheme.settings.model_copy(
        update={"alerts": ["alert_wecom"], "load": scheme.settings.load.model_copy(update={"on_problem": "warn"})}
    )
    scheme = scheme.edited("settings", settings)
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    ended = _backfill(scheme, wdt_emulator, kingdee_emulator, root, HOURS, tmp_path)
    assert all(e["state"] == "success" for e in ended.values())
    told = [r["json"]["markdown"]["content"] for r in robots.received]
    assert len(told) == 1 and QUARANTINED in told[0], told
