"""Ingest rules at their edges: ack only after commit, the offline boundary, liveness locks."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.connectivity import apply_activity
from fangxin.devices.models import ConnectivityEvent, Device
from fangxin.sim.broker import RunningBroker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.devices_helpers import at, beats, events, feed, kitchen, tick
from tests.helpers import count, dumps, publish_all, publisher, register, result, wait_until
from tests.ingest_process import start_subscribed, stop

SITE = "k-edge"


def device(sessions: sessionmaker[Session], device_id: str = "cam-1") -> Device:
    with sessions() as session:
        found = session.get(Device, device_id)
        assert found is not None
        return found


# --- the offline boundary: offline at exactly missed-beats x interval after the last message ----


def test_last_seen_is_the_receive_time_and_the_deadline_three_intervals_on(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, SITE, {"cam-1": 60})
    beats(sessions, SITE, "cam-1", [0])
    cam = device(sessions)
    assert cam.last_seen_at == at(0)
    assert cam.deadline == at(180)
    # a status stamped by the device an hour off changes nothing: receive times count
    feed(sessions, SITE, "cam-1", "status", 30, dumps({"ts": at(-3600).isoformat()}))
    cam = device(sessions)
    assert (cam.last_seen_at, cam.deadline) == (at(30), at(210))


def test_the_sweep_times_out_at_exactly_three_intervals(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, {"cam-1": 60})
    beats(sessions, SITE, "cam-1", [0])
    tick(sessions, 179.999)
    assert device(sessions).conn_state == "online"
    assert events(sessions, "cam-1")[-1] == ("online", 0, "message")
    tick(sessions, 180)
    assert device(sessions).conn_state == "offline"
    # the outage starts at the first missed beat, not at the sweep
    assert events(sessions, "cam-1")[-1] == ("offline", 60, "timeout")


def test_a_message_at_exactly_the_deadline_finds_the_outage(
    sessions: sessionmaker[Session],
) -> None:
    """With no sweep in between, the message itself must decide as the sweep would have."""
    kitchen(sessions, SITE, {"cam-1": 60, "cam-2": 60})
    beats(sessions, SITE, "cam-1", [0, 180])
    beats(sessions, SITE, "cam-2", [0, 179])
    assert events(sessions, "cam-1")[1:] == [
        ("online", 0, "message"),
        ("offline", 60, "timeout"),
        ("online", 180, "message"),
    ]
    assert events(sessions, "cam-2")[1:] == [("online", 0, "message")]


def test_the_reported_interval_moves_the_boundary(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, {"cam-1": 60})
    feed(sessions, SITE, "cam-1", "status", 0, dumps({"ts": at(0).isoformat(), "interval_s": 30}))
    assert device(sessions).deadline == at(90)
    tick(sessions, 89.999)
    assert device(sessions).conn_state == "online"
    tick(sessions, 90)
    assert events(sessions, "cam-1")[-1] == ("offline", 30, "timeout")


# --- liveness locks: ingesters sharing a subscription must not deadlock -----------------------


def test_liveness_update_does_not_wait_for_another_batchs_inserts(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Another batch's inserts hold KEY SHARE locks on the device (foreign keys); ours must pass.

    With FOR UPDATE the liveness read waited on them, and the other batch then waited on ours:
    a deadlock on every pair of concurrent batches for the same devices (PostgreSQL only).
    """
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    kitchen(sessions, SITE, {"cam-1": 60})
    other = sessions()
    try:
        # the other batch: a row referencing the device (an alarm, a result), not committed yet
        closed = {"until": at(6), "until_s": at(6).timestamp(), "cause": "message"}
        other.add(
            ConnectivityEvent(
                device_id="cam-1",
                state="online",
                at=at(5),
                at_s=at(5).timestamp(),
                recorded_at=at(6),
                **closed,
            )
        )
        other.flush()
        with sessions.begin() as ours:
            ours.execute(text("SET LOCAL lock_timeout = '5s'"))
            moved = apply_activity(ours, {"cam-1": at(10)}, {}, {})
        assert [t.state for t in moved] == ["online"]
    finally:
        other.rollback()
        other.close()
    assert device(sessions).last_seen_at == at(10)


# --- ack after commit: a batch held by the database and killed is redelivered, stored once -----


def blocked_on_results(engine: Engine) -> bool:
    """Tell whether some backend waits for a lock on the results table."""
    with engine.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
                " AND relation = 'rapid_test_results'::regclass"
            )
        )
    return bool(waiting)


def test_nothing_is_acked_before_its_commit(
    engine: Engine,
    db_url: str,
    sessions: sessionmaker[Session],
    private_mosquitto: RunningBroker,
    tmp_path: Path,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("holding a table mid-batch needs PostgreSQL's lock queue")
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    topic = f"fangxin/v1/{site}/{rt}/result"
    client_id, log = unique("ingest"), tmp_path / "ingest.log"
    first = start_subscribed(sessions, db_url, private_mosquitto, client_id, log)
    try:
        with engine.connect() as holder:
            # hold the database: the ingester's batch waits inside its transaction
            holder.execute(text("LOCK TABLE rapid_test_results IN ACCESS EXCLUSIVE MODE"))
            with publisher(private_mosquitto.url) as client:
                publish_all(client, [(topic, dumps(result(f"h-{i:03d}"))) for i in range(50)])
            assert wait_until(lambda: blocked_on_results(engine), 60), log.read_text()
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            holder.rollback()
    finally:
        if first.poll() is None:
            first.kill()
    assert count(sessions, RapidTestResult) == 0
    second = start_subscribed(sessions, db_url, private_mosquitto, client_id, log)
    try:
        # a probe after the held batch on the same topic: stored means everything before it is
        with publisher(private_mosquitto.url) as client:
            publish_all(client, [(topic, dumps(result("probe")))])
        probe = RapidTestResult.result_id == "probe"
        assert wait_until(lambda: count(sessions, RapidTestResult, probe) == 1, 60), log.read_text()
    finally:
        assert stop(second) == 0
    with sessions() as session:
        stored = session.scalars(
            select(RapidTestResult.result_id).order_by(RapidTestResult.result_id)
        ).all()
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
    assert total == 51
    assert stored == [f"h-{i:03d}" for i in range(50)] + ["probe"]
