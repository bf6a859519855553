"""Time-series points and the sink interface; the SQL sink used when no InfluxDB is set."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from fangxin.db.bulk import upsert
from fangxin.ingest.models import SeriesPoint

FieldValue = float | int | str | bool
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point: identity is measurement + tag set + timestamp, as in InfluxDB."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: dt.datetime
    # Tells apart distinct readings of one series at one instant (a multi-channel instrument
    # reports several samples with the same timestamp); empty for readings that are unique.
    key: str = ""

    @property
    def timestamp_ns(self) -> int:
        """Return the time in ns; a keyed point is nudged by < 1 ms, the same on every write."""
        delta = self.ts - _EPOCH
        base = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        return base + (zlib.crc32(self.key.encode()) % 1_000_000 if self.key else 0)

    @property
    def series_key(self) -> str:
        """Return the sorted tag set as one string."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.tags.items()))

    @property
    def identity(self) -> tuple[str, str, dt.datetime, str]:
        """Return what makes two points the same point (later fields win)."""
        return self.measurement, self.series_key, self.ts, self.key


def merge_points(points: Sequence[Point]) -> list[Point]:
    """Merge points of the same identity in arrival order, later fields winning (InfluxDB rule)."""
    merged: dict[tuple[str, str, dt.datetime, str], Point] = {}
    for point in points:
        key = point.identity
        if key in merged:
            old = merged[key]
            point = Point(
                point.measurement, point.tags, {**old.fields, **point.fields}, point.ts, point.key
            )
        merged[key] = point
    return list(merged.values())


class PointSink(Protocol):
    """Where time-series points go; write() returns only once they are durable."""

    def write(self, session: Session, points: Sequence[Point]) -> None:
        """Store the points durably (the session is the caller's open transaction)."""

    def problem(self) -> str | None:
        """Return why the sink is not healthy, or None."""

    def close(self) -> None:
        """Flush and release resources."""


# Measurements the SQL database already keeps as records: rapid_test is the rapid_test_results
# table itself (ts, site, device, item, verdict, value), so a second copy would only cost time.
KEPT_AS_RECORDS = frozenset({"rapid_test"})


class SqlSink:
    """Time series in the SQL database, in the caller's transaction; same identity as InfluxDB."""

    def write(self, session: Session, points: Sequence[Point]) -> None:
        """Upsert the points: a redelivered point overwrites itself instead of doubling."""
        points = [p for p in points if p.measurement not in KEPT_AS_RECORDS]
        if not points:
            return
        rows = [
            {
                "measurement": p.measurement,
                "series_key": p.series_key,
                "ts": p.ts,
                "point_key": p.key,
                "tags": dict(p.tags),
                "fields": dict(p.fields),
            }
            for p in merge_points(points)
        ]
        upsert(
            session,
            SeriesPoint.__table__,
            rows,
            key=("measurement", "series_key", "ts", "point_key"),
            update=("tags", "fields"),
        )

    def problem(self) -> str | None:
        """Return None: the SQL sink is healthy whenever the database is."""
        return None

    def close(self) -> None:
        """Release nothing: the SQL sink holds no resources."""
