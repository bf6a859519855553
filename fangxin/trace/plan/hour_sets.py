"""The kitchens' sets of business hours as a derived table, with the counted-time formula in SQL.

Counted time is Clock.cumulative of fangxin.devices.uptime with the hours as columns, so one
grouped query counts every kitchen by its own hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.devices.uptime import DAY, Clock, Hours, counted_of_sql, days_sql

# (opens, closes) -> (shift, counted seconds per day)
HourSets = dict[tuple[str, str], tuple[float, float]]


def epoch_sql(column: Any, dialect: str) -> Any:
    """Return a datetime column as epoch seconds in SQL."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), Float)
    return (func.julianday(column) - 2440587.5) * 86400.0


def counted_sql(t: Any, shift: Any, per_day: Any, dialect: str) -> Any:
    """Return Clock.cumulative in SQL with the hours as columns (see fangxin.devices.uptime)."""
    shifted = t + shift
    return counted_of_sql(shifted, days_sql(shifted, dialect), per_day, dialect)


def counted_py(t: float, shift: float, per_day: float) -> float:
    """Return counted_sql in Python, operation for operation (the same float results)."""
    shifted = t + shift
    days = int(shifted / DAY)
    return days * per_day + min(shifted - days * DAY, per_day)


def hour_sets(session: Session, tz: str, start: dt.datetime, business: bool) -> HourSets:
    """Return every set of hours kitchens keep: (opens, closes) -> (shift, counted per day)."""
    pairs: list[tuple[str, str]] = [
        (o, c) for o, c in session.execute(select(Site.opens, Site.closes).distinct())
    ] or [("00:00", "00:00")]
    out = {}
    for opens, closes in pairs:
        clock = Clock.of(Hours.parse(opens, closes) if business else None, tz, start)
        shift = clock.offset_s - (clock.hours.opens if clock.hours else 0)
        out[(opens, closes)] = (float(shift), float(clock.hours.per_day if clock.hours else DAY))
    return out


def hours_table(sets: HourSets, points: Sequence[float] = ()) -> Any:
    """Return the sets of hours as a derived table to join sites on.

    Column c{i} holds the counted time at points[i] under each set of hours (counted_py, the
    same float as counted_sql would give), so a query reads it instead of working it out.
    """
    rows = [
        select(
            literal(opens).label("opens"),
            literal(closes).label("closes"),
            literal(shift, Float).label("shift"),
            literal(per_day, Float).label("per_day"),
            *(
                literal(counted_py(t, shift, per_day), Float).label(f"c{i}")
                for i, t in enumerate(points)
            ),
        )
        for (opens, closes), (shift, per_day) in sets.items()
    ]
    return union_all(*rows).subquery("hours")
