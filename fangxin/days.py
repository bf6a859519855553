"""The city day and report windows: local days' bounds, from/to as RFC 3339 instants or dates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DEFAULT_SPAN = dt.timedelta(days=1)
MAX_SPAN = dt.timedelta(days=400)


def day_bounds(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """Return the bounds [start, end) of a local day in the city's time zone, as aware datetimes."""
    start = dt.datetime.combine(day, dt.time(), ZoneInfo(tz))
    return start, start + dt.timedelta(days=1)


def local_day(now: dt.datetime, tz: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Return today's date in the city's time zone and its bounds."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return (today, *day_bounds(today, tz))


def last_days(today_start: dt.datetime, days: int) -> list[tuple[int, dt.datetime, dt.datetime]]:
    """Return the last `days` local days up to today, oldest first, as (index, start, end)."""
    out = []
    for i in range(days):
        start = today_start - dt.timedelta(days=days - 1 - i)
        out.append((i, start, start + dt.timedelta(days=1)))
    return out


class WindowError(ValueError):
    """A window that cannot be understood."""


def parse_instant(text: str, tz: str, *, end: bool = False) -> dt.datetime:
    """Parse an instant with offset, or a local date (its start; the next day's for an end)."""
    try:
        if len(text) == 10:
            start, stop = day_bounds(dt.date.fromisoformat(text), tz)
            return stop if end else start
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WindowError(f"{text!r} is neither YYYY-MM-DD nor an RFC 3339 time") from exc
    if value.tzinfo is None:
        raise WindowError(f"{text!r} needs an offset (e.g. +08:00)")
    return value


def resolve(
    start: str | None, end: str | None, now: dt.datetime, tz: str
) -> tuple[dt.datetime, dt.datetime]:
    """Return the window [start, end): by default the last day up to now."""
    stop = parse_instant(end, tz, end=True) if end else now
    begin = parse_instant(start, tz) if start else stop - DEFAULT_SPAN
    if stop <= begin:
        raise WindowError("`to` must be after `from`")
    if stop - begin > MAX_SPAN:
        raise WindowError(f"a window may span at most {MAX_SPAN.days} days")
    return begin.astimezone(dt.UTC), stop.astimezone(dt.UTC)
