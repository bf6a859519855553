"""Bulk writes of a batch's size (PostgreSQL: COPY into a staging table) overwrite, never double."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db.bulk import insert_ignore, update_rows, upsert
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


KEY = ("measurement", "series_key", "ts", "point_key")


def _rows(n: int, value: float, first: int = 0) -> list[dict[str, object]]:
    return [
        {
            "measurement": "device_status",
            "series_key": "device=d-1",
            "ts": T0 + dt.timedelta(seconds=i),
            "point_key": "",
            "tags": {"device": "d-1"},
            "fields": {"n": value},
        }
        for i in range(first, first + n)
    ]


def test_a_rolled_back_batch_does_not_break_the_next(sessions: sessionmaker[Session]) -> None:
    # The first batch creates the connection's staging table and rolls back with it.
    with sessions() as session:
        insert_ignore(session, SeriesPoint.__table__, _rows(30, 1.0), KEY)
        session.rollback()
    with sessions.begin() as session:
        insert_ignore(session, SeriesPoint.__table__, _rows(30, 2.0), KEY)
    stored = _stored(sessions)
    assert [fields["n"] for _, fields in stored] == [2.0] * 30


def test_two_batches_of_one_shape_in_one_transaction(sessions: sessionmaker[Session]) -> None:
    # The second batch must not see the first's rows again (the same key twice is an error).
    with sessions.begin() as session:
        upsert(session, SeriesPoint.__table__, _rows(30, 1.0), key=KEY, update=("fields",))
        upsert(session, SeriesPoint.__table__, _rows(30, 2.0, 10), key=KEY, update=("fields",))
    stored = _stored(sessions)
    assert [fields["n"] for _, fields in stored] == [1.0] * 10 + [2.0] * 30


def test_update_rows_sets_each_row_by_its_key(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        insert_ignore(session, SeriesPoint.__table__, _rows(40, 0.0), KEY)
    many = [{**row, "fields": {"n": 1.0}} for row in _rows(30, 0.0)]  # staged on PostgreSQL
    few = [{**row, "fields": {"n": 2.0}} for row in _rows(3, 0.0, 35)]  # row by row
    with sessions.begin() as session:
        update_rows(session, SeriesPoint.__table__, many, KEY)
        update_rows(session, SeriesPoint.__table__, few, KEY)
    stored = _stored(sessions)
    assert [fields["n"] for _, fields in stored] == [1.0] * 30 + [0.0] * 5 + [2.0] * 3 + [0.0] * 2
