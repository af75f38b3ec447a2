from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pendulum
import pytest

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.wdt.connector import api_bounds
from erpsync.windows import Window, WindowError, last_complete_interval, parse_datetime, resolve_window

CRON = "0 * * * *"
WDT_API = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml").source.api


def test_a_naive_datetime_is_shanghai_time():
    assert parse_datetime("2026-11-01T08:00:00", "x") == pendulum.datetime(2026, 11, 1, 0, tz="UTC")
    assert parse_datetime("2026-11-01", "x") == pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai")
    assert parse_datetime("2026-11-01T00:00:00+00:00", "x").hour == 8


def test_params_win_over_the_data_interval():
    window = resolve_window(
        window_start="2026-11-01",
        window_end="2026-11-02",
        data_interval_start=datetime(2026, 1, 1, tzinfo=UTC),
        data_interval_end=datetime(2026, 1, 2, tzinfo=UTC),
        run_after=None,
        cron=CRON,
    )
    assert window.key == "20261101T000000_20261102T000000"
    assert api_bounds(window, WDT_API) == ("2026-11-01 00:00:00", "2026-11-01 23:59:59")


def test_the_data_interval_is_used_when_no_params():
    start = pendulum.datetime(2026, 11, 1, 2, tz="UTC")
    window = resolve_window(
        window_start=None,
        window_end=None,
        data_interval_start=start,
        data_interval_end=start.add(hours=1),
        run_after=None,
        cron=CRON,
    )
    assert window.start.hour == 10 and window.end.hour == 11
    assert window.start.timezone_name == "Asia/Shanghai"


def test_a_manual_run_without_interval_takes_the_last_complete_one():
    run_after = pendulum.datetime(2026, 11, 1, 10, 30, tz="Asia/Shanghai")
    window = resolve_window(
        window_start=None,
        window_end=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=run_after,
        cron=CRON,
    )
    assert (window.start.hour, window.end.hour) == (9, 10)
    daily = last_complete_interval("0 0 * * *", "Asia/Shanghai", run_after)
    assert daily.key == "20261031T000000_20261101T000000"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-01", None, "window_end"),
        (None, "2026-11-01", "window_start"),
        ("2026-11-02", "2026-11-01", "not before"),
        ("yesterday", "2026-11-01", "window_start: not an ISO"),
        ("2026-11-01T00:00:00.5", "2026-11-02", "fractions of a second"),
    ],
)
def test_bad_params_name_the_problem(start, end, message):
    with pytest.raises(WindowError, match=message):
        resolve_window(
            window_start=start,
            window_end=end,
            data_interval_start=None,
            data_interval_end=None,
            run_after=None,
            cron=CRON,
        )


def test_split_covers_the_window_exactly_without_overlap():
    window = Window.of(parse_datetime("2026-01-01", "s"), parse_datetime("2026-03-15", "e"))
    parts = window.split(timedelta(days=30))
    assert [p.end - p.start for p in parts][:2] == [timedelta(days=30)] * 2
    assert parts[0].start == window.start and parts[-1].end == window.end
    assert all(a.end == b.start for a, b in pairwise(parts))
    # consecutive API windows never share a second: the inclusive end is one second before the next start
    assert api_bounds(parts[0], WDT_API)[1] == "2026-01-30 23:59:59"
    assert api_bounds(parts[1], WDT_API)[0] == "2026-01-31 00:00:00"


def test_window_round_trips_through_xcom():
    window = Window.of(parse_datetime("2026-11-01T10:00", "s"), parse_datetime("2026-11-01T11:00", "e"))
    assert Window.from_dict(window.as_dict()) == window


def test_a_window_keeps_the_zone_of_its_scheme():
    """A scheme in UTC: its params, key and label are UTC wall clock; WDT still gets Shanghai times."""
    window = resolve_window(
        window_start="2026-11-01",
        window_end="2026-11-02",
        data_interval_start=None,
        data_interval_end=None,
        run_after=None,
        cron=CRON,
        timezone="UTC",
    )
    assert window.timezone == "UTC"
    assert window.key == "20261101T000000_20261102T000000"
    assert str(window) == "[2026-11-01 00:00:00, 2026-11-02 00:00:00) UTC"
    assert api_bounds(window, WDT_API) == ("2026-11-01 08:00:00", "2026-11-02 07:59:59")
    assert Window.from_key(window.key, "UTC") == window
    assert Window.from_key(window.key) != window  # the same key in Shanghai is another window
    assert Window.from_dict(window.as_dict()).timezone == "UTC"
    assert window.in_timezone("Asia/Shanghai").key == "20261101T080000_20261102T080000"
    manual = resolve_window(
        window_start=None,
        window_end=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=pendulum.datetime(2026, 11, 2, 3, tz="Asia/Shanghai"),  # 2026-11-01 19:00 UTC
        cron="0 0 * * *",
        timezone="UTC",
    )
    assert manual.key == "20261031T000000_20261101T000000"


def test_a_window_over_a_daylight_saving_change_splits_by_elapsed_time():
    # Europe/Berlin's 2026-10-25 has 25 hours: a 24-hour span never reads more than the API allows
    window = Window.of(
        parse_datetime("2026-10-24", "s", "Europe/Berlin"),
        parse_datetime("2026-10-27", "e", "Europe/Berlin"),
        "Europe/Berlin",
    )
    parts = window.split(timedelta(hours=24))
    assert all(p.end - p.start <= timedelta(hours=24) for p in parts)
    assert parts[0].start == window.start and parts[-1].end == window.end and len(parts) == 4
    assert all(a.end == b.start for a, b in pairwise(parts))


def test_a_manifest_written_before_windows_had_zones_is_shanghai():
    old = {"start": "2026-11-01T00:00:00+08:00", "end": "2026-11-02T00:00:00+08:00"}
    assert Window.from_dict(old).timezone == "Asia/Shanghai"
    assert Window.from_dict(old).key == "20261101T000000_20261102T000000"
