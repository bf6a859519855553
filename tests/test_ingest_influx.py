"""Ingester with the InfluxDB sink through a real broker: InfluxDB down loses nothing acked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.influx import InfluxSink
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import (
    CST,
    count,
    dumps,
    publish_all,
    publisher,
    register,
    result,
    running_ingester,
    wait_until,
)
from tests.influx_double import InfluxDouble

N = 200


@pytest.fixture
def double() -> Iterator[InfluxDouble]:
    with InfluxDouble() as server:
        yield server


def test_influx_down_then_503_then_back(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str, double: InfluxDouble
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    settings = replace(
        settings,
        influx_url=double.url,
        influx_token=double.token,
        influx_org=double.org,
        influx_bucket=double.bucket,
    )
    start = dt.datetime.now(CST) - dt.timedelta(hours=1)
    messages = [
        (
            f"fangxin/v1/{site}/{rt}/result",
            dumps(
                result(
                    f"r-{i:04d}", float(i % 100), ts=(start + dt.timedelta(seconds=i)).isoformat()
                )
            ),
        )
        for i in range(N)
    ]
    double.set_mode("unreachable")
    with running_ingester(settings, broker_url) as ingester, publisher(broker_url) as client:
        sink = ingester.pipeline.sink
        assert isinstance(sink, InfluxSink)
        publish_all(client, messages[: N // 2])
        # acked means durable: records in SQL, points in the local spool
        assert wait_until(lambda: count(sessions, RapidTestResult) == N // 2)
        assert wait_until(lambda: sink.spool_depth == N // 2)
        double.set_mode("503", retry_after=1)
        publish_all(client, messages[N // 2 :])
        assert wait_until(lambda: count(sessions, RapidTestResult) == N)
        assert wait_until(lambda: sink.spool_depth == N)
        problem = sink.problem()
        assert problem is not None
        double.set_mode("ok")
        assert sink.wait_drained(30)
    stored = [p for p in double.points() if p.measurement == "rapid_test"]
    ids = [str(p.fields["id"]) for p in stored]
    assert ids == [f"r-{i:04d}" for i in range(N)]  # every point, once, in order
    assert {p.tags["verdict"] for p in stored} == {"negative", "suspect", "positive"}
