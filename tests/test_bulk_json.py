"""Bulk upserts of a batch's size (PostgreSQL: one JSON statement) overwrite, never double."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db.bulk import upsert
from fangxin.ingest.models import SeriesPoint
from fangxin.ingest.sinks import Point, SqlSink

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _points(n: int, fps: float) -> list[Point]:
    tags = {"site": "m-1", "device": "d-1", "kind": "camera"}
    return [
        Point("device_status", tags, {"fps": fps, "n": float(i)}, T0 + dt.timedelta(seconds=i))
        for i in range(n)
    ]


def _stored(sessions: sessionmaker[Session]) -> list[tuple[dt.datetime, dict[str, object]]]:
    with sessions() as session:
        rows = session.execute(select(SeriesPoint.ts, SeriesPoint.fields).order_by(SeriesPoint.ts))
        return [(ts, dict(fields)) for ts, fields in rows]


def test_batch_upsert_overwrites_each_point_once(sessions: sessionmaker[Session]) -> None:
    sink = SqlSink()
    with sessions.begin() as session:
        sink.write(session, _points(60, 25.0))
    with sessions.begin() as session:  # redelivered with new figures, plus ten new points
        sink.write(session, _points(70, 30.0))
    stored = _stored(sessions)
    assert len(stored) == 70
    assert [fields["n"] for _, fields in stored] == [float(i) for i in range(70)]
    assert {fields["fps"] for _, fields in stored} == {30.0}
    assert stored[0][0] == T0  # the instant kept, whatever the offset it came with


def test_batch_with_repeated_keys_keeps_the_last(sessions: sessionmaker[Session]) -> None:
    # merge_points makes keys distinct for the sink; the bulk layer must also cope without it
    rows = [
        {
            "measurement": "device_status",
            "series_key": "device=d-1",
            "ts": T0 + dt.timedelta(seconds=i % 10),
            "point_key": "",
            "tags": {"device": "d-1"},
            "fields": {"n": float(i)},
        }
        for i in range(30)
    ]
    key = ("measurement", "series_key", "ts", "point_key")
    with sessions.begin() as session:
        upsert(session, SeriesPoint.__table__, rows, key=key, update=("tags", "fields"))
    stored = _stored(sessions)
    assert [fields["n"] for _, fields in stored] == [float(i) for i in range(20, 30)]
