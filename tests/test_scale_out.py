"""Three ingesters on one shared subscription, one killed halfway: every message stored once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.sim.broker import RunningBroker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import count, dumps, publisher, register, result, wait_until
from tests.ingest_process import start_ingester, start_subscribed, stop, wait_subscribed

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


def logs(folder: Path) -> str:
    """Return every member's log, for a failure message."""
    return "\n".join(f"== {p.name}\n{p.read_text()}" for p in sorted(folder.glob("*.log")))


def test_shared_subscription_member_killed_halfway(
    db_url: str, sessions: sessionmaker[Session], private_mosquitto: RunningBroker, tmp_path: Path
) -> None:
    site = unique("m")
    register(sessions, site, {f"{site}-d{i}": "rapid_test" for i in range(DEVICES)})
    ids = [unique("member") for _ in range(3)]
    log = tmp_path / "ingest.log"
    # Publishing before every member has subscribed would route the first messages to fewer
    # members (or, before the first SUBACK, nowhere): wait for each one's run to open.
    members = [
        start_subscribed(sessions, db_url, private_mosquitto, cid, tmp_path / f"{cid}.log", "g1")
        for cid in ids
    ]
    try:
        halfway, go_on = threading.Event(), threading.Event()
        stream = threading.Thread(
            target=publish, args=(private_mosquitto.url, site, halfway, go_on)
        )
        stream.start()
        assert halfway.wait(120)
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N // 4, 120), logs(tmp_path)
        members[0].send_signal(signal.SIGKILL)
        members[0].wait(10)
        stored_at_kill = count(sessions, RapidTestResult)
        go_on.set()
        # The orchestrator restarts the killed member with its client id: its persistent session
        # hands back what the broker had in flight to it (Mosquitto does not pass it to others).
        members[0] = start_ingester(db_url, private_mosquitto, ids[0], log, shared="g1")
        wait_subscribed(sessions, members[0], ids[0], log, runs_before=1)
        stream.join(120)
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N, 180), logs(tmp_path)
    finally:
        codes = [stop(proc) for proc in members]
    assert codes == [0, 0, 0]
    assert stored_at_kill < N // 2
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
        distinct = session.scalar(select(func.count(func.distinct(RapidTestResult.result_id))))
        per_device = session.execute(
            select(RapidTestResult.device_id, func.count()).group_by(RapidTestResult.device_id)
        ).all()
    assert (total, distinct) == (N, N)
    assert sorted(c for _, c in per_device) == [N // DEVICES] * DEVICES
    # every member did its share: each one's own log shows messages it stored
    for cid in ids[1:]:
        text = (tmp_path / f"{cid}.log").read_text()
        assert f"as {cid}" in text
        assert "Ingester stopped" in text
        assert "messages=0," not in text.split("Ingester stopped")[1], text
