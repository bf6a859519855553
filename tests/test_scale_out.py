"""Three ingesters on one shared subscription, one killed halfway: every message stored once."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.sim.broker import RunningBroker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import count, dumps, publisher, register, result, wait_until
from tests.test_crash import start_ingester

N = 30_000
DEVICES = 10


def publish(broker_url: str, site: str, halfway: threading.Event, go_on: threading.Event) -> None:
    """Publish N results over DEVICES devices, pausing at half until told to go on."""
    with publisher(broker_url) as client:
        infos = []
        for i in range(N):
            if i == N // 2:
                halfway.set()
                assert go_on.wait(120)
            topic = f"fangxin/v1/{site}/{site}-d{i % DEVICES}/result"
            infos.append(client.publish(topic, dumps(result(f"r-{i:05d}", float(i % 100))), qos=1))
        for info in infos:
            info.wait_for_publish(60)


def test_shared_subscription_member_killed_halfway(
    db_url: str, sessions: sessionmaker[Session], private_mosquitto: RunningBroker, tmp_path: Path
) -> None:
    site = unique("m")
    register(sessions, site, {f"{site}-d{i}": "rapid_test" for i in range(DEVICES)})
    ids = [unique("member") for _ in range(3)]
    log = tmp_path / "ingest.log"
    members = [start_ingester(db_url, private_mosquitto, cid, log, shared="g1") for cid in ids]
    try:
        time.sleep(2.0)  # all three subscribed to the group
        halfway, go_on = threading.Event(), threading.Event()
        stream = threading.Thread(
            target=publish, args=(private_mosquitto.url, site, halfway, go_on)
        )
        stream.start()
        assert halfway.wait(120)
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N // 4, 60), log.read_text()
        members[0].send_signal(signal.SIGKILL)
        members[0].wait(10)
        stored_at_kill = count(sessions, RapidTestResult)
        go_on.set()
        # The orchestrator restarts the killed member with its client id: its persistent session
        # hands back what the broker had in flight to it (Mosquitto does not pass it to others).
        time.sleep(1.0)
        members[0] = start_ingester(db_url, private_mosquitto, ids[0], log, shared="g1")
        stream.join(120)
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N, 120), log.read_text()
        time.sleep(1.0)
    finally:
        for proc in members:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in members]
    assert codes == [0, 0, 0]
    assert stored_at_kill < N // 2
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
        distinct = session.scalar(select(func.count(func.distinct(RapidTestResult.result_id))))
        shares = session.execute(
            select(RapidTestResult.device_id, func.count()).group_by(RapidTestResult.device_id)
        ).all()
    assert (total, distinct) == (N, N)
    assert sorted(c for _, c in shares) == [N // DEVICES] * DEVICES
    text = log.read_text()
    for cid in ids:  # every member did its share
        assert f"as {cid}" in text
