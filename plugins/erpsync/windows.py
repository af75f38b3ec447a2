"""Time windows ``[start, end)`` in a scheme's zone, and how a DAG run finds its window.

A window carries its zone (``settings.schedule.timezone``, Asia/Shanghai unless a scheme says
otherwise): its key (the staging folder's name), its label and naive times given to it are wall-clock
times of that zone. The API's own zone and format are the connector's business (``api_bounds``).

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

SHANGHAI = "Asia/Shanghai"  # the default zone of a scheme (settings.schedule.timezone)
_LABEL_FORMAT = "YYYY-MM-DD HH:mm:ss"
_KEY_FORMAT = "YYYYMMDD[T]HHmmss"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class WindowError(ValueError):
    """A window that cannot be run; names the parameter."""


@dataclass(frozen=True)
class Window:
    """A half-open interval of time, to the second, in the zone of its start."""

    start: pendulum.DateTime
    end: pendulum.DateTime

    def __post_init__(self) -> None:
        if self.start.tz is not None and self.end.timezone_name != self.start.timezone_name:
            object.__setattr__(self, "end", self.end.in_timezone(self.start.tz))
        if self.start >= self.end:
            raise WindowError(f"window start {self.start} is not before its end {self.end}")
        for name, value in (("start", self.start), ("end", self.end)):
            if value.microsecond:
                raise WindowError(f"window {name} {value} has fractions of a second; windows are whole seconds")

    @classmethod
    def of(cls, start: datetime, end: datetime, timezone: str = SHANGHAI) -> Window:
        """The window from ``start`` to ``end`` in ``timezone``; naive times are wall-clock times there."""
        return cls(_zoned(start, timezone), _zoned(end, timezone))

    @property
    def timezone(self) -> str:
        return str(self.start.timezone_name)

    def in_timezone(self, timezone: str) -> Window:
        """The same interval in ``timezone`` (its key and label change, its instants do not)."""
        if timezone == self.timezone:
            return self
        return Window(self.start.in_timezone(timezone), self.end.in_timezone(timezone))

    @property
    def key(self) -> str:
        """A path-safe name, the same for every run of this window: its wall-clock times in its zone."""
        return f"{self.start.format(_KEY_FORMAT)}_{self.end.format(_KEY_FORMAT)}"

    @classmethod
    def from_key(cls, key: str, timezone: str = SHANGHAI) -> Window:
        """The window ``key`` names in ``timezone`` (the zone of the scheme that wrote it); ``WindowError``
        if it names none."""
        start, _, end = key.partition("_")
        try:
            return cls(
                pendulum.from_format(start, _KEY_FORMAT, tz=timezone),
                pendulum.from_format(end, _KEY_FORMAT, tz=timezone),
            )
        except ValueError as exc:
            raise WindowError(f"not a window key: {key!r}") from exc

    def split(self, max_span: timedelta) -> list[Window]:
        """Consecutive sub-windows no longer than ``max_span`` (elapsed time, whatever the zone's
        daylight saving does to its days) that cover this window exactly."""
        parts, start = [], self.start
        while start < self.end:
            end = min(start.add(seconds=int(max_span.total_seconds())), self.end)
            parts.append(Window(start, end))
            start = end
        return parts

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "timezone": self.timezone}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        timezone = data.get("timezone") or SHANGHAI  # manifests written before windows carried their zone
        return cls.of(
            parse_datetime(data["start"], "start", timezone), parse_datetime(data["end"], "end", timezone), timezone
        )

    def __str__(self) -> str:
        return f"[{self.start.format(_LABEL_FORMAT)}, {self.end.format(_LABEL_FORMAT)}) {self.timezone}"


def _zoned(value: datetime, timezone: str) -> pendulum.DateTime:
    if value.tzinfo is None:
        return pendulum.instance(value, tz=timezone)
    return pendulum.instance(value).in_timezone(timezone)


def parse_datetime(text: str, name: str, timezone: str = SHANGHAI) -> pendulum.DateTime:
    """An ISO date or datetime; without an offset it is wall-clock time in ``timezone``."""
    text = str(text).strip()
    try:
        if _DATE_ONLY.match(text):
            midnight = pendulum.parse(text, tz=timezone)
            assert isinstance(midnight, pendulum.DateTime)  # a date alone parses to its midnight
            return midnight
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{name}: not an ISO date or datetime: {text!r}") from None
    return _zoned(parsed, timezone)


def last_complete_interval(cron: str, timezone: str, before: datetime) -> Window:
    """The schedule interval that ended last at or before ``before``."""
    local = pendulum.instance(before).in_timezone(timezone)
    it = croniter(cron, local)
    end = it.get_prev(datetime)
    start = it.get_prev(datetime)
    return Window.of(start, end, timezone)


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
        return Window.of(
            parse_datetime(window_start, "window_start", timezone),
            parse_datetime(window_end, "window_end", timezone),
            timezone,
        )
    if data_interval_start is not None and data_interval_end is not None and data_interval_start < data_interval_end:
        return Window.of(data_interval_start, data_interval_end, timezone)
    return last_complete_interval(cron, timezone, run_after or pendulum.now(timezone))
