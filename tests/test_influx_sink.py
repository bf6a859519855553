"""InfluxSink against a real HTTP double of InfluxDB 2.x: statuses, spool, replay, dead letters."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.lineproto import measurement_of, parse_retry_after, to_line
from fangxin.ingest.models import DeadLetter
from fangxin.ingest.sinks import FieldValue, Point
from fangxin.ingest.spool import Spool
from tests.helpers import wait_until
from tests.influx_double import InfluxDouble, StoredPoint

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[1]
DRAIN_S = 60  # a bound on waiting for an event (drained, requests seen), not a pass mark
SinkFactory = Callable[..., InfluxSink]


def make_points(n: int, start: int = 0, **fields: FieldValue) -> list[Point]:
    """Points one second apart, tags like rapid_test's, a float value unless overridden."""
    return [
        Point(
            "rapid_test",
            {"site": "market 1", "device": f"dev-{i % 3}", "item": "pesticide"},
            {"value": 0.5 + i, **fields},
            T0 + dt.timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]


def ts_ns(point: Point) -> int:
    return point.timestamp_ns


def keys(stored: list[StoredPoint]) -> list[tuple[str, int]]:
    return [(p.tags["device"], p.ts_ns) for p in stored]


def expected_keys(points: list[Point]) -> list[tuple[str, int]]:
    return [(p.tags["device"], ts_ns(p)) for p in points]


@pytest.fixture
def double() -> Iterator[InfluxDouble]:
    with InfluxDouble() as server:
        yield server


@pytest.fixture
def make_sink(double: InfluxDouble, tmp_path: Path) -> Iterator[SinkFactory]:
    sinks: list[InfluxSink] = []

    def factory(**kwargs: Any) -> InfluxSink:
        options: dict[str, Any] = {
            "retry_budget_s": 3.0,
            "timeout_s": 3.0,
            "replay_min_backoff_s": 0.05,
            "replay_max_backoff_s": 0.2,
        }
        options.update(kwargs)
        spool = options.pop("spool_path", tmp_path / "spool.db")
        sink = InfluxSink(double.url, double.token, double.org, double.bucket, spool, **options)
        sinks.append(sink)
        return sink

    yield factory
    for sink in sinks:
        sink.close()


def write(engine: Engine, sink: InfluxSink, points: list[Point]) -> None:
    with Session(engine) as session, session.begin():
        sink.write(session, points)


def dead_letters(engine: Engine) -> list[DeadLetter]:
    with Session(engine) as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def test_keyed_points_at_one_instant_stay_apart() -> None:
    # a multi-channel instrument reports several samples with the same timestamp
    a, b = (Point("rapid_test", {"device": "d"}, {"value": 1.0}, T0, key=k) for k in ("r-1", "r-2"))
    assert a.timestamp_ns != b.timestamp_ns
    assert 0 <= a.timestamp_ns - Point("m", {}, {}, T0).timestamp_ns < 1_000_000
    again = Point("rapid_test", {"device": "d"}, {"value": 1.0}, T0, key="r-1")
    assert to_line(again) == to_line(a)  # a redelivery overwrites itself


def test_line_protocol_keeps_types_and_escapes() -> None:
    point = Point(
        "m x", {"a,b": "c=d e", "empty": ""}, {"f": 2.0, "i": 2, "b": False, "s": 'q"\\'}, T0
    )
    line = to_line(point)
    assert line == 'm\\ x,a\\,b=c\\=d\\ e b=false,f=2.0,i=2i,s="q\\"\\\\" 1740816000000000000'
    assert measurement_of(line) == "m x"
    with pytest.raises(ValueError, match="NaN"):
        to_line(Point("m", {}, {"v": float("nan")}, T0))
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("100000") == 600.0
    assert parse_retry_after(None) is None


def test_double_answers_like_influxdb(double: InfluxDouble) -> None:
    def post(query: str, body: bytes, token: str = double.token) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{double.url}/api/v2/write?{query}",
            data=body,
            headers={"Authorization": f"Token {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, {}
        except urllib.error.HTTPError as exc:
            header = exc.headers["X-Platform-Error-Code"]
            return exc.code, {**json.loads(exc.read()), "header": header}

    base = "org=fangxin&bucket=series"
    assert post(base, b"m v=1i 1") == (204, {})
    assert post(base, b"m v=1 2", token="wrong")[0] == 401
    assert post("org=fangxin&bucket=nope", b"m v=1 1")[0] == 404
    assert post(base + "&precision=m", b"m v=1 1")[1]["message"].startswith("invalid precision")
    assert post(base, b"")[1]["message"] == "writing requires points"
    status, error = post(base, b"m v=1 1\nm,t= v=1 2")
    assert (status, error["code"], error["header"]) == (400, "invalid", "invalid")
    assert "missing tag value" in error["message"]
    status, error = post(base, b"m v=2 3\nm v=3i 4")
    assert (status, error["code"]) == (422, "unprocessable entity")
    assert error["message"].endswith("is type float, already exists as type integer dropped=1")
    assert [p.fields for p in double.points()] == [{"v": 1}, {"v": 3}]  # the rest is stored
    with urllib.request.urlopen(f"{double.url}/health", timeout=5) as response:
        assert json.loads(response.read())["status"] == "pass"


def test_happy_path(double: InfluxDouble, make_sink: SinkFactory, engine: Engine) -> None:
    sink = make_sink()
    points = make_points(20)
    points.append(Point("device_status", {"site": "s 1", "kind": "cam"}, {"online": True}, T0))
    write(engine, sink, points)

    stored = double.points()
    assert len(stored) == 21
    assert stored[0].fields == {"value": 0.5}
    assert isinstance(stored[0].fields["value"], float)
    assert stored[5].tags == {"site": "market 1", "device": "dev-2", "item": "pesticide"}
    assert [p.ts_ns for p in stored[:20]] == [ts_ns(p) for p in points[:20]]
    assert stored[20].measurement == "device_status"
    assert stored[20].fields == {"online": True}
    requests = double.write_requests()
    assert [r.status for r in requests] == [204]
    assert requests[0].gzip
    assert requests[0].params["precision"] == "ns"
    assert requests[0].params["org"] == "fangxin"
    assert requests[0].params["bucket"] == "series"
    assert sink.stats() == {
        "points_written": 21,
        "points_spooled": 0,
        "points_dead": 0,
        "spool_depth": 0,
    }
    assert sink.problem() is None


def test_unreachable_then_back_drains_in_order(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine, tmp_path: Path
) -> None:
    double.set_mode("unreachable")
    # a budget far longer than any slow machine takes: finishing well inside it means the
    # refused connections were spooled at once, not retried until the budget ran out
    sink = make_sink(retry_budget_s=60.0)
    first, second = make_points(30), make_points(30, start=30)
    started = time.monotonic()
    write(engine, sink, first)
    write(engine, sink, second)
    assert time.monotonic() - started < 30.0
    assert sink.spool_depth == 60
    assert sink.points_spooled == 60
    problem = sink.problem()
    assert problem is not None
    assert "unavailable" in problem
    assert "60 points" in problem

    # What the sink spooled is on disk, oldest first, readable by another connection.
    other = Spool(tmp_path / "spool.db")
    assert [line for _, line in other.peek(100)] == [to_line(p) for p in first + second]
    other.close()

    double.set_mode("ok")
    assert sink.wait_drained(DRAIN_S)
    stored = double.points()
    assert keys(stored) == expected_keys(first + second)
    assert len(double.accepted_lines) == 60  # each line written once: nothing doubled
    assert sink.points_written == 60
    assert sink.problem() is None


def test_new_points_queue_behind_spooled_ones(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.set_mode("unreachable")
    sink = make_sink(replay_min_backoff_s=60.0, replay_max_backoff_s=60.0)
    old = make_points(5, start=10)
    write(engine, sink, old)
    double.set_mode("ok")
    newer = make_points(5, start=0)  # earlier timestamps, later arrival: order is arrival
    write(engine, sink, newer)
    assert double.points() == []
    assert sink.spool_depth == 10

    sink.replay_now()
    assert sink.wait_drained(DRAIN_S)
    assert keys(double.points()) == expected_keys(old + newer)


@pytest.mark.parametrize("mode", ["503", "429"])
def test_retry_after_is_honoured(
    mode: str, double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.set_mode(mode, retry_after=1, times=1)
    sink = make_sink()
    write(engine, sink, make_points(10))
    first, second = double.write_requests()
    assert (first.status, second.status) == (int(mode), 204)
    assert second.at - first.at >= 0.99
    assert len(double.points()) == 10
    assert sink.spool_depth == 0
    assert sink.points_spooled == 0


def test_503_beyond_budget_spools(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.set_mode("503", retry_after=1)
    sink = make_sink(retry_budget_s=1.5)
    started = time.monotonic()
    write(engine, sink, make_points(10))
    elapsed = time.monotonic() - started
    # Retry-After is honoured (the lower bound); then the 1.5 s budget ends the retries (an
    # upper bound with room for a loaded machine: an endless retry would not return at all)
    assert 0.99 <= elapsed < 1.5 + 10.0
    assert [r.status for r in double.write_requests()[:2]] == [503, 503]
    assert sink.points_spooled == 10
    assert double.points() == []
    assert "unavailable" in (sink.problem() or "")

    double.set_mode("ok")
    sink.replay_now()
    assert sink.wait_drained(DRAIN_S)
    assert len(double.points()) == 10


def test_timeout_spools_and_replay_is_idempotent(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.hang_s = 1.5
    double.set_mode("hang", times=1)  # answers (and stores) only after the client gave up
    sink = make_sink(timeout_s=0.5)
    write(engine, sink, make_points(5))
    assert sink.points_spooled == 5
    assert sink.wait_drained(DRAIN_S)
    assert len(double.points()) == 5  # written twice at most, stored once


def test_413_splits_until_batches_fit(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.max_body_bytes = 2000
    sink = make_sink()
    points = make_points(100)
    write(engine, sink, points)
    statuses = [r.status for r in double.write_requests()]
    assert statuses.count(413) >= 3
    assert statuses[-1] == 204
    assert keys(double.points()) == expected_keys(points)
    assert sink.points_written == 100
    assert sink.points_dead == 0
    assert sink.spool_depth == 0


def test_400_bad_point_dead_lettered_rest_written(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    sink = make_sink()
    points = make_points(10)
    # A status payload with an empty key: InfluxDB rejects the whole batch ("missing field key").
    bad = Point("device_status", {"site": "s1"}, {"": 1.0}, T0)
    write(engine, sink, [*points[:4], bad, *points[4:]])

    assert double.write_requests()[0].status == 400
    assert keys(double.points()) == expected_keys(points)
    [dead] = dead_letters(engine)
    assert (dead.source, dead.topic, dead.payload) == ("influx", "device_status", to_line(bad))
    assert "400" in dead.reason
    assert "missing field key" in dead.reason
    assert sink.points_dead == 1
    assert sink.points_written == 10
    assert sink.spool_depth == 0


def test_422_rejected_points_dead_lettered_others_written(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    sink = make_sink()
    write(engine, sink, make_points(1))  # value is now a float field in InfluxDB
    batch = make_points(10, start=1)
    batch[3] = Point("rapid_test", batch[3].tags, {"value": 7}, batch[3].ts)  # integer
    batch[6] = Point("rapid_test", batch[6].tags, {"value": 1.0, "time": 5.0}, batch[6].ts)
    write(engine, sink, batch)

    assert double.write_requests()[1].status == 422
    good = [p for i, p in enumerate(batch) if i not in (3, 6)]
    assert keys(double.points()) == expected_keys(make_points(1) + good)
    conflict, bad_name = dead_letters(engine)
    assert conflict.payload == to_line(batch[3])
    assert "field type conflict" in conflict.reason
    assert bad_name.payload == to_line(batch[6])
    assert "invalid field name" in bad_name.reason
    assert all("422" in d.reason and d.topic == "rapid_test" for d in (conflict, bad_name))
    assert sink.points_dead == 2
    assert sink.spool_depth == 0


@pytest.mark.parametrize("mode", ["401", "403", "404"])
def test_refusal_keeps_points_and_raises_alarm(
    mode: str,
    double: InfluxDouble,
    make_sink: SinkFactory,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    double.set_mode(mode)
    sink = make_sink()
    with caplog.at_level(logging.ERROR, logger="fangxin.ingest.influx"):
        write(engine, sink, make_points(8))
    assert sink.spool_depth == 8
    assert double.points() == []
    assert dead_letters(engine) == []
    problem = sink.problem()
    assert problem is not None
    assert "refuses writes" in problem
    assert mode in problem
    assert any(r.levelno == logging.ERROR and mode in r.getMessage() for r in caplog.records)

    double.set_mode("ok")
    sink.replay_now()
    assert sink.wait_drained(DRAIN_S)
    assert len(double.points()) == 8
    assert sink.problem() is None


def test_replay_keeps_lines_until_written(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.set_mode("unreachable")
    sink = make_sink()
    write(engine, sink, make_points(12))
    double.set_mode("503", retry_after=0)
    assert wait_until(lambda: len(double.write_requests()) >= 2, DRAIN_S)
    assert [r.status for r in double.write_requests()[:2]] == [503, 503]
    assert sink.spool_depth == 12  # a failed replay deletes nothing

    double.set_mode("ok")
    assert sink.wait_drained(DRAIN_S)
    assert keys(double.points()) == expected_keys(make_points(12))


def test_replay_dead_letters_through_session_factory(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine
) -> None:
    double.set_mode("unreachable")
    sink = make_sink()
    sink.set_session_factory(sessionmaker(engine))
    points = make_points(6)
    points[2] = Point("rapid_test", points[2].tags, {"time": 1.0}, points[2].ts)
    write(engine, sink, points)
    assert sink.spool_depth == 6

    double.set_mode("ok")
    assert sink.wait_drained(DRAIN_S)
    [dead] = dead_letters(engine)
    assert dead.payload == to_line(points[2])
    assert "invalid field name" in dead.reason
    assert len(double.points()) == 5
    assert sink.points_dead == 1


def test_spool_survives_a_crash_and_is_replayed(
    double: InfluxDouble, make_sink: SinkFactory, engine: Engine, tmp_path: Path
) -> None:
    double.set_mode("unreachable")
    spool_path = tmp_path / "crash-spool.db"
    script = f"""
import datetime as dt, os
from sqlalchemy.orm import Session
from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.sinks import Point
sink = InfluxSink({double.url!r}, "test-token", "fangxin", "series", {str(spool_path)!r})
t0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
sink.write(Session(), [Point("m", {{"d": "x"}}, {{"v": float(i)}}, t0 + dt.timedelta(seconds=i))
                       for i in range(25)])
os._exit(9)  # no close(), no flush: what write() returned for must be on disk
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == 9

    double.set_mode("ok")
    sink = make_sink(spool_path=spool_path)
    assert sink.wait_drained(DRAIN_S)
    stored = double.points()
    assert [p.fields["v"] for p in stored] == [float(i) for i in range(25)]


def test_spool_fifo_and_concurrent_drain(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    spool.append(["a", "b", "c"])
    assert spool.peek(2) == [(1, "a"), (2, "b")]
    assert spool.delete_through(2) == 2
    assert spool.depth() == 1
    assert spool.delete([3]) == 1
    assert spool.depth() == 0
    spool.append(["d"])
    assert spool.peek(5) == [(4, "d")]  # sequence numbers are never reused
    spool.delete_through(4)

    appended = [f"line {i}" for i in range(400)]
    drained: list[str] = []

    def producer() -> None:
        for i in range(0, 400, 20):
            spool.append(appended[i : i + 20])

    thread = threading.Thread(target=producer)
    thread.start()
    deadline = time.monotonic() + DRAIN_S
    while len(drained) < 400 and time.monotonic() < deadline:
        rows = spool.peek(30)
        if rows:
            drained += [line for _, line in rows]
            spool.delete_through(rows[-1][0])
    thread.join()
    assert drained == appended
    assert spool.depth() == 0
    spool.close()
    with pytest.raises(RuntimeError):
        spool.peek(1)
