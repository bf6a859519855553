"""The pipeline on a real database: records, verdicts, dedupe, dead letters, security events."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.models import Alarm, Device
from fangxin.devices.registry import device_out
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.models import DeadLetter, SecurityEvent, SeriesPoint
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count, dumps, register, result, status

SITE, RT, CAM = "m-100", "rt-100", "cam-100"


@pytest.fixture
def pipeline(sessions: sessionmaker[Session]) -> Pipeline:
    register(sessions, SITE, {RT: "rapid_test", CAM: "camera"})
    return Pipeline(SqlSink())


def msg(channel: str, payload: bytes, device: str = RT, site: str = SITE, **kw: bool) -> RawMessage:
    return RawMessage(
        f"fangxin/v1/{site}/{device}/{channel}", payload, dt.datetime.now(dt.UTC), **kw
    )


def run(sessions: sessionmaker[Session], pipeline: Pipeline, *messages: RawMessage) -> None:
    with sessions.begin() as session:
        pipeline.process(session, list(messages))


def test_results_stored_with_derived_verdicts(
    sessions: sessionmaker[Session], pipeline: Pipeline
) -> None:
    run(
        sessions,
        pipeline,
        msg("result", dumps(result("r-1", 12.0))),
        msg("result", dumps(result("r-2", 45.0))),
        msg("result", dumps(result("r-3", 62.0, verdict="negative"))),
    )
    with sessions() as session:
        rows = {r.result_id: r for r in session.scalars(select(RapidTestResult))}
    assert {k: v.verdict for k, v in rows.items()} == {
        "r-1": "negative",
        "r-2": "suspect",
        "r-3": "positive",
    }
    assert rows["r-3"].device_verdict == "negative"
    assert rows["r-3"].verdict_mismatch is True
    assert rows["r-1"].verdict_mismatch is False
    assert rows["r-1"].sample_name == "菠菜"
    assert rows["r-1"].ts.tzinfo is not None
    # the SQL sink keeps no second copy: rapid_test_results is that series
    assert count(sessions, SeriesPoint, SeriesPoint.measurement == "rapid_test") == 0


def test_redelivery_is_stored_once(sessions: sessionmaker[Session], pipeline: Pipeline) -> None:
    payload, beat = dumps(result("r-dup")), dumps(status())
    run(
        sessions, pipeline, msg("result", payload), msg("result", payload), msg("status", beat, CAM)
    )
    run(sessions, pipeline, msg("result", payload), msg("status", beat, CAM))
    assert count(sessions, RapidTestResult) == 1
    assert count(sessions, SeriesPoint) == 1


def test_same_id_on_two_devices_is_two_results(sessions: sessionmaker[Session]) -> None:
    register(sessions, "m-101", {"rt-a": "rapid_test", "rt-b": "rapid_test"})
    pipeline = Pipeline(SqlSink())
    body = dumps(result("r-1"))
    run(
        sessions,
        pipeline,
        msg("result", body, "rt-a", "m-101"),
        msg("result", body, "rt-b", "m-101"),
    )
    assert count(sessions, RapidTestResult) == 2


def test_array_backlog_with_one_bad_element(
    sessions: sessionmaker[Session], pipeline: Pipeline
) -> None:
    run(
        sessions,
        pipeline,
        msg("result", dumps([result("r-1"), result("r-2", "high"), result("r-3")])),
    )
    assert count(sessions, RapidTestResult) == 2
    with sessions() as session:
        dead = session.scalars(select(DeadLetter)).one()
    assert "[1] value: Input should be a valid number" in dead.reason
    assert dead.topic == f"fangxin/v1/{SITE}/{RT}/result"


@pytest.mark.parametrize(
    ("channel", "payload", "reason"),
    [
        ("result", b"{oops", "invalid JSON"),
        ("result", dumps(result("r", ts="2026-11-29 07:58")), "ts:"),
        ("result", dumps(result("r", item="melamine")), "item 'melamine' is not in the catalogue"),
        ("result", dumps(result("r", value=None)), "needs a value"),
        ("result", b"x" * 300_000, "exceeds the"),
        ("status", dumps({"fps": 25}), "ts: Field required"),
        ("alarm", dumps({"id": "a", "ts": "2026-11-29T08:00:00+08:00", "type": "No Hat"}), "type:"),
        ("state", b"maybe", "state must be"),
    ],
)
def test_bad_input_becomes_dead_letter(
    sessions: sessionmaker[Session], pipeline: Pipeline, channel: str, payload: bytes, reason: str
) -> None:
    good = msg("result", dumps(result("r-good")))
    run(sessions, pipeline, msg(channel, payload, device=CAM if channel != "result" else RT), good)
    with sessions() as session:
        dead = session.scalars(select(DeadLetter)).one()
    assert reason in dead.reason
    assert len(dead.payload) <= 2048
    assert count(sessions, RapidTestResult) == 1  # the stream goes on


def test_bad_topic_is_dead_letter(sessions: sessionmaker[Session], pipeline: Pipeline) -> None:
    run(sessions, pipeline, RawMessage("fangxin/v1/m/d/video", b"{}", dt.datetime.now(dt.UTC)))
    with sessions() as session:
        assert "unknown channel" in session.scalars(select(DeadLetter.reason)).one()


def test_unknown_device_and_wrong_site_are_security_events(
    sessions: sessionmaker[Session], pipeline: Pipeline
) -> None:
    register(sessions, "m-other", {})
    run(
        sessions,
        pipeline,
        msg("result", dumps(result("r-1")), device="rt-ghost"),
        msg("result", dumps(result("r-2")), site="m-other"),
    )
    with sessions() as session:
        events = {e.kind: e for e in session.scalars(select(SecurityEvent))}
    assert set(events) == {"unknown_device", "site_mismatch"}
    assert f"belongs to site {SITE}, not m-other" in events["site_mismatch"].detail
    assert count(sessions, RapidTestResult) == 0
    assert count(sessions, DeadLetter) == 0


def test_status_updates_liveness_and_series(
    sessions: sessionmaker[Session], pipeline: Pipeline
) -> None:
    heartbeat = msg("status", dumps(status(interval_s=30)), device=CAM)
    run(sessions, pipeline, heartbeat)
    with sessions() as session:
        device = session.get(Device, CAM)
        assert device is not None
        point = session.scalars(select(SeriesPoint)).one()
    assert device.last_seen_at == heartbeat.received_at  # our receive time, not the device's
    assert device.reported_interval_s == 30
    assert point.measurement == "device_status"
    assert point.tags == {"site": SITE, "device": CAM, "kind": "camera"}
    assert point.fields["storage_free_gb"] == 812.5


@pytest.mark.parametrize(
    ("caps", "announced", "applied"),
    [(None, 300, 300), (None, 301, 300), (None, 86400, 300), ({"camera": 120}, 121, 120)],
)
def test_camera_interval_is_capped_and_recorded(
    sessions: sessionmaker[Session],
    caps: dict[str, int] | None,
    announced: int,
    applied: int,
) -> None:
    register(sessions, SITE, {CAM: "camera", "sensor-1": "sensor"})
    pipeline = Pipeline(SqlSink(), interval_caps=caps)
    beat = dumps(status(interval_s=announced))
    run(sessions, pipeline, msg("status", beat, device=CAM), msg("status", beat, "sensor-1"))
    with sessions() as session:
        camera, sensor = session.get(Device, CAM), session.get(Device, "sensor-1")
        assert camera is not None
        assert sensor is not None
        assert camera.last_seen_at is not None
        # Three missed beats of the capped interval, not of the announced one, make it offline.
        assert camera.deadline == camera.last_seen_at + dt.timedelta(seconds=3 * applied)
    assert (camera.reported_interval_s, camera.announced_interval_s) == (applied, announced)
    assert sensor.reported_interval_s == announced  # kinds without a cap keep what they say
    out = device_out(camera, dt.datetime.now(dt.UTC))
    assert (out.interval_s, out.announced_interval_s) == (applied, announced)


def test_state_and_retained_state(sessions: sessionmaker[Session], pipeline: Pipeline) -> None:
    run(sessions, pipeline, msg("state", b"offline", device=CAM, retained=True))
    with sessions() as session:
        device = session.get(Device, CAM)
        assert device is not None
        assert device.state == "offline"
        assert device.last_seen_at is None  # a retained message is no sign of life
    live = msg("state", b"online", device=CAM)
    run(sessions, pipeline, live)
    with sessions() as session:
        device = session.get(Device, CAM)
        assert device is not None
        assert device.state == "online"
        assert device.last_seen_at == live.received_at


def test_alarm_dedupe(sessions: sessionmaker[Session], pipeline: Pipeline) -> None:
    body = dumps(
        {"id": "a-77", "ts": "2026-11-29T08:00:00+08:00", "type": "no_chef_hat", "confidence": 0.93}
    )
    run(sessions, pipeline, msg("alarm", body, device=CAM))
    run(sessions, pipeline, msg("alarm", body, device=CAM))
    with sessions() as session:
        alarm = session.scalars(select(Alarm)).one()
    assert alarm.type == "no_chef_hat"
    assert alarm.confidence == pytest.approx(0.93)
