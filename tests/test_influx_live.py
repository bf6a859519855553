"""InfluxSink against a real InfluxDB 2.x, when FANGXIN_TEST_INFLUX_URL and friends are set."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fangxin.db import Base, make_engine, utcnow
from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.lineproto import to_line
from fangxin.ingest.models import DeadLetter
from fangxin.ingest.sinks import Point
from fangxin.migrations.tables import all_tables

ENV = {
    name: os.environ.get(f"FANGXIN_TEST_INFLUX_{name}")
    for name in ("URL", "TOKEN", "ORG", "BUCKET")
}
pytestmark = pytest.mark.skipif(
    not all(ENV.values()),
    reason="no live InfluxDB: set FANGXIN_TEST_INFLUX_URL, _TOKEN, _ORG and _BUCKET to run",
)


def env(name: str) -> str:
    value = ENV[name]
    assert value is not None
    return value


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    all_tables()
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def measurement() -> Iterator[str]:
    name = f"fangxin_test_{uuid.uuid4().hex[:12]}"
    yield name
    from influxdb_client.client.influxdb_client import InfluxDBClient

    with InfluxDBClient(url=env("URL"), token=env("TOKEN"), org=env("ORG")) as client:
        client.delete_api().delete(
            utcnow() - dt.timedelta(days=1),
            utcnow() + dt.timedelta(days=1),
            f'_measurement="{name}"',
            bucket=env("BUCKET"),
            org=env("ORG"),
        )


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[InfluxSink]:
    sink = InfluxSink(
        env("URL"), env("TOKEN"), env("ORG"), env("BUCKET"), tmp_path / "spool.db", timeout_s=10
    )
    yield sink
    sink.close()


def query(measurement: str) -> list[dict[str, Any]]:
    from influxdb_client.client.influxdb_client import InfluxDBClient

    flux = (
        f'from(bucket: "{env("BUCKET")}") |> range(start: -2d, stop: 1d)'
        f' |> filter(fn: (r) => r._measurement == "{measurement}")'
    )
    with InfluxDBClient(url=env("URL"), token=env("TOKEN"), org=env("ORG")) as client:
        tables = client.query_api().query(flux, org=env("ORG"))
        return sorted(
            (dict(record.values) for table in tables for record in table.records),
            key=lambda values: values["_time"],
        )


def points(measurement: str, n: int, start: dt.datetime) -> list[Point]:
    return [
        Point(
            measurement,
            {"site": "market 1", "device": "dev-1"},
            {"value": 1.0 + i},
            start + dt.timedelta(seconds=i),
        )
        for i in range(n)
    ]


def test_live_happy_path(sink: InfluxSink, engine: Engine, measurement: str) -> None:
    start = (utcnow() - dt.timedelta(minutes=10)).replace(microsecond=0)
    with Session(engine) as session, session.begin():
        sink.write(session, points(measurement, 5, start))
    rows = query(measurement)
    assert [row["_value"] for row in rows] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(isinstance(row["_value"], float) and row["site"] == "market 1" for row in rows)
    assert rows[0]["_time"] == start
    assert sink.points_written == 5
    assert sink.spool_depth == 0
    assert sink.problem() is None


def test_live_field_type_conflict(sink: InfluxSink, engine: Engine, measurement: str) -> None:
    start = (utcnow() - dt.timedelta(minutes=10)).replace(microsecond=0)
    first = points(measurement, 1, start)
    batch = points(measurement, 4, start + dt.timedelta(seconds=1))
    batch[2] = Point(measurement, batch[2].tags, {"value": 9}, batch[2].ts)  # integer: conflict
    with Session(engine) as session, session.begin():
        sink.write(session, first)
        sink.write(session, batch)
    assert len(query(measurement)) == 4
    with Session(engine) as session:
        [dead] = session.scalars(select(DeadLetter)).all()
    assert dead.payload == to_line(batch[2])
    assert "422" in dead.reason
    assert "field type conflict" in dead.reason
    assert sink.points_dead == 1
    assert sink.spool_depth == 0
