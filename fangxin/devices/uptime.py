"""Uptime arithmetic: online, offline and unknown seconds of devices over a window.

Uptime = online / (online + offline); time when no ingester observed is unknown and excluded.
Optionally only a site's business hours count. Counted time is measured with a cumulative
function F (counted seconds from the epoch to t), so the count in [s, e) is F(e) - F(s); the
same F is written in SQL for the fleet report, which sums it over the offline periods.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, cast, func, literal

DAY = 86400
Span = tuple[float, float]  # epoch seconds [start, end)


def _seconds_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


@dataclass(frozen=True, slots=True)
class Hours:
    """Daily counted hours in local time; closes < opens crosses midnight."""

    opens: int
    closes: int

    @classmethod
    def parse(cls, opens: str, closes: str) -> Hours:
        """Build from HH:MM strings (the sites' columns)."""
        return cls(_seconds_of_day(opens), _seconds_of_day(closes) % DAY)

    @property
    def per_day(self) -> int:
        """Return the counted seconds of a whole day."""
        if self.opens == self.closes:
            return DAY
        return (self.closes - self.opens) % DAY


def days_sql(shifted: Any, dialect: str) -> Any:
    """Return floor(shifted / day) in SQL: whole days of a count of seconds."""
    if dialect == "postgresql":
        # A float divisor: an integer one made SQLAlchemy cast it to NUMERIC, and PostgreSQL
        # then divided every period's times in decimal arithmetic (a third of the pass).
        return func.floor(shifted / literal(float(DAY), Float))
    # SQLite: CAST truncates, which is floor for the positive times we have
    return cast(shifted / DAY, Integer)


def counted_of_sql(shifted: Any, days: Any, per_day: Any, dialect: str) -> Any:
    """Return Clock.cumulative in SQL from L, its whole days and the counted seconds a day."""
    least = func.least if dialect == "postgresql" else func.min
    return days * per_day + least(shifted - days * DAY, per_day)


@dataclass(frozen=True, slots=True)
class Clock:
    """How time is counted: business hours (None: around the clock) at a fixed UTC offset."""

    hours: Hours | None = None
    offset_s: int = 8 * 3600

    @classmethod
    def of(cls, hours: Hours | None, tz: str, at: dt.datetime) -> Clock:
        """Use the zone's offset at `at` (China keeps no daylight saving time)."""
        offset = at.astimezone(ZoneInfo(tz)).utcoffset() or dt.timedelta()
        counted = hours if hours and hours.opens != hours.closes else None
        return cls(counted, int(offset.total_seconds()))

    def cumulative(self, t: float) -> float:
        """Return counted seconds from the epoch to t.

        Counted time is the first `per_day` seconds after each day's opening, so with L the
        seconds since an opening-aligned origin, F = floor(L / day) * per_day +
        min(L mod day, per_day): one formula whether or not the hours cross midnight.
        """
        if self.hours is None:
            return t
        shifted = t + self.offset_s - self.hours.opens
        days = shifted // DAY
        return days * self.hours.per_day + min(shifted - days * DAY, self.hours.per_day)

    def measure(self, start: float, end: float) -> float:
        """Return counted seconds in [start, end)."""
        return self.cumulative(end) - self.cumulative(start) if end > start else 0.0

    def sql(self, t: Any, dialect: str) -> Any:
        """Return cumulative() as a SQL expression of the epoch-seconds expression t."""
        if self.hours is None:
            return t
        shifted = self.sql_shifted(t)
        return self.sql_counted(shifted, self.sql_days(shifted, dialect), dialect)

    def sql_shifted(self, t: Any) -> Any:
        """Return L of cumulative() in SQL: seconds since an opening-aligned origin."""
        return t + literal(self.offset_s - self._hours().opens, Float)

    def sql_days(self, shifted: Any, dialect: str) -> Any:
        """Return floor(L / day) in SQL for sql_shifted's L."""
        return days_sql(shifted, dialect)

    def sql_counted(self, shifted: Any, days: Any, dialect: str) -> Any:
        """Return cumulative() in SQL from sql_shifted's L and sql_days' whole days of it."""
        return counted_of_sql(shifted, days, self._hours().per_day, dialect)

    def _hours(self) -> Hours:
        if self.hours is None:
            raise ValueError("a clock around the clock has no business-hours arithmetic")
        return self.hours


@dataclass(frozen=True, slots=True)
class Figures:
    """Counted seconds of one device or a group over a window."""

    online_s: float = 0.0
    offline_s: float = 0.0
    unknown_s: float = 0.0

    @property
    def observed_s(self) -> float:
        """Return online + offline seconds (unknown excluded)."""
        return self.online_s + self.offline_s

    @property
    def uptime(self) -> float | None:
        """Return online / (online + offline), or None when nothing was observed."""
        return self.online_s / self.observed_s if self.observed_s > 0 else None

    def __add__(self, other: Figures) -> Figures:
        """Add two groups' seconds."""
        return Figures(
            self.online_s + other.online_s,
            self.offline_s + other.offline_s,
            self.unknown_s + other.unknown_s,
        )

    def as_dict(self) -> dict[str, float | None]:
        """Return the figures rounded for the doors."""
        observed = self.online_s + self.offline_s  # self.uptime, inlined: 10,000s of rows
        uptime = self.online_s / observed if observed > 0 else None
        return {
            "online_s": round(self.online_s, 3),
            "offline_s": round(self.offline_s, 3),
            "unknown_s": round(self.unknown_s, 3),
            "uptime": None if uptime is None else round(uptime, 6),
        }


def clip(span: Span, window: Span) -> Span | None:
    """Return the part of span inside window, or None."""
    s, e = max(span[0], window[0]), min(span[1], window[1])
    return (s, e) if e > s else None


def window_figures(
    window: Span, offline: Sequence[Span], unknown: Sequence[Span], clock: Clock
) -> Figures:
    """Return one device's figures from its window, offline periods and the unknown periods.

    The window is already cut to the device's registration and to now; all are epoch spans.
    """
    total = clock.measure(*window)
    unknown_in = [u for u in (clip(u, window) for u in unknown) if u]
    unknown_s = sum(clock.measure(*u) for u in unknown_in)
    offline_s = 0.0
    for period in offline:
        part = clip(period, window)
        if part is None:
            continue
        offline_s += clock.measure(*part)
        for u in unknown_in:
            both = clip(part, u)
            if both:
                offline_s -= clock.measure(*both)
    return Figures(total - unknown_s - offline_s, offline_s, unknown_s)


class UnknownTime:
    """Counted unknown seconds in any window, over sorted disjoint spans (O(log n) a window)."""

    def __init__(self, spans: Sequence[Span], clock: Clock) -> None:
        """Index spans (sorted, disjoint: as unknown_periods gives them) measured by clock."""
        self._spans = list(spans)
        self._starts = [a for a, _ in self._spans]
        self._clock = clock
        # _before[i]: counted seconds of the first i spans (like Clock, a cumulative function)
        self._before = list(accumulate((clock.measure(a, b) for a, b in self._spans), initial=0.0))

    def _until(self, t: float) -> float:
        i = bisect_right(self._starts, t)
        if i == 0:
            return 0.0
        a, b = self._spans[i - 1]
        return self._before[i - 1] + self._clock.measure(a, min(b, t))

    def within(self, window: Span) -> float:
        """Return counted unknown seconds inside the window."""
        return self._until(window[1]) - self._until(window[0]) if window[1] > window[0] else 0.0
