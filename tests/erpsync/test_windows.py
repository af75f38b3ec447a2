from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pendulum
import pytest

from erpsync.windows import Window, WindowError, last_complete_interval, parse_datetime, resolve_window

CRON = "0 * * * *"


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
    assert window.api_bounds() == ("2026-11-01 00:00:00", "2026-11-01 23:59:59")


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
    assert parts[0].api_bounds()[1] == "2026-01-30 23:59:59" and parts[1].api_bounds()[0] == "2026-01-31 00:00:00"


def test_window_round_trips_through_xcom():
    window = Window.of(parse_datetime("2026-11-01T10:00", "s"), parse_datetime("2026-11-01T11:00", "e"))
    assert Window.from_dict(window.as_dict()) == window
