"""Time windows ``[start, end)`` in Asia/Shanghai, and how a DAG run finds its window.

Airflow 3 gives a manual run without a logical date no data interval, so the window is resolved in
this order: the run's ``window_start``/``window_end`` params, then the data interval, then the last
complete schedule interval before the run started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pendulum
from croniter import croniter

SHANGHAI = "Asia/Shanghai"
_WDT_FORMAT = "YYYY-MM-DD HH:mm:ss"
_KEY_FORMAT = "YYYYMMDD[T]HHmmss"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class WindowError(ValueError):
    """A window that cannot be run; names the parameter."""


@dataclass(frozen=True)
class Window:
    """A half-open interval of Asia/Shanghai time, to the second."""

    start: pendulum.DateTime
    end: pendulum.DateTime

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise WindowError(f"window start {self.start} is not before its end {self.end}")
        for name, value in (("start", self.start), ("end", self.end)):
            if value.microsecond:
                raise WindowError(f"window {name} {value} has fractions of a second; WDT times are whole seconds")

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Window:
        return cls(_shanghai(start), _shanghai(end))

    @property
    def key(self) -> str:
        """A path-safe name, the same for every run of this window."""
        return f"{self.start.format(_KEY_FORMAT)}_{self.end.format(_KEY_FORMAT)}"

    @classmethod
    def from_key(cls, key: str) -> Window:
        """The window ``key`` names; ``WindowError`` if it names none."""
        start, _, end = key.partition("_")
        try:
            return cls(
                pendulum.from_format(start, _KEY_FORMAT, tz=SHANGHAI),
                pendulum.from_format(end, _KEY_FORMAT, tz=SHANGHAI),
            )
        except ValueError as exc:
            raise WindowError(f"not a window key: {key!r}") from exc

    def api_bounds(self, inclusive_end: bool = True) -> tuple[str, str]:
        """``start_time`` and ``end_time`` for the API; WDT's window includes both ends (spec §4.1), so
        its end is the last second of the window."""
        end = self.end - timedelta(seconds=1) if inclusive_end else self.end
        return self.start.format(_WDT_FORMAT), end.format(_WDT_FORMAT)

    def split(self, max_span: timedelta) -> list[Window]:
        """Consecutive sub-windows no longer than ``max_span`` that cover this window exactly."""
        parts, start = [], self.start
        while start < self.end:
            end = min(start + max_span, self.end)
            parts.append(Window(start, end))
            start = end
        return parts

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        return cls.of(parse_datetime(data["start"], "start"), parse_datetime(data["end"], "end"))

    def __str__(self) -> str:
        return f"[{self.start.format(_WDT_FORMAT)}, {self.end.format(_WDT_FORMAT)}) {SHANGHAI}"


def _shanghai(value: datetime) -> pendulum.DateTime:
    if value.tzinfo is None:
        return pendulum.instance(value, tz=SHANGHAI)
    return pendulum.instance(value).in_timezone(SHANGHAI)


def parse_datetime(text: str, name: str) -> pendulum.DateTime:
    """An ISO date or datetime; without an offset it is Asia/Shanghai time."""
    text = str(text).strip()
    try:
        if _DATE_ONLY.match(text):
            midnight = pendulum.parse(text, tz=SHANGHAI)
            assert isinstance(midnight, pendulum.DateTime)  # a date alone parses to its midnight
            return midnight
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{name}: not an ISO date or datetime: {text!r}") from None
    return _shanghai(parsed)


def last_complete_interval(cron: str, timezone: str, before: datetime) -> Window:
    """The schedule interval that ended last at or before ``before``."""
    local = pendulum.instance(before).in_timezone(timezone)
    it = croniter(cron, local)
    end = it.get_prev(datetime)
    start = it.get_prev(datetime)
    return Window.of(start, end)


def resolve_window(
    *,
    window_start: str | None,
    window_end: str | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime | None,
    cron: str,
    timezone: str = SHANGHAI,
) -> Window:
    if window_start or window_end:
        if not (window_start and window_end):
            missing = "window_end" if window_start else "window_start"
            raise WindowError(f"{missing}: give both window_start and window_end, or neither")
        return Window.of(parse_datetime(window_start, "window_start"), parse_datetime(window_end, "window_end"))
    if data_interval_start is not None and data_interval_end is not None and data_interval_start < data_interval_end:
        return Window.of(data_interval_start, data_interval_end)
    return last_complete_interval(cron, timezone, run_after or pendulum.now(timezone))
