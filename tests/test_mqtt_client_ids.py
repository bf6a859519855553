"""Client-id takeover on a real Mosquitto running the shipped deploy/mosquitto/mosquitto.conf."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.orm import Session, sessionmaker

from fangxin.contract.topics import shared_subscription
from fangxin.db import utcnow
from fangxin.devices import mosquitto_export, registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.sim.broker import mosquitto_binary
from tests.deploy_helpers import shipped_mosquitto
from tests.helpers import wait_until

INGESTER, PASSWORD = "fangxin-ingest", "ingest0secret"
INGEST_ID = "fangxin-ingest-web-1"  # predictable: fangxin-ingest-<hostname>
QUEUED = 20


@dataclass
class Broker:
    port: int
    ingest_port: int
    passwords: dict[str, str]
    log: Path


@pytest.fixture
def broker(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Broker]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("no mosquitto binary")
    passwords = {}
    with sessions() as session:
        registry.add_site(session, SiteIn(id="k-1", kind="kitchen", district="新华区", name="k"))
        for device in ("cam-a", "cam-b"):
            made = registry.add_device(
                session, DeviceIn(id=device, site="k-1", kind="camera"), utcnow()
            )
            passwords[device] = made.mqtt_password
        files = mosquitto_export.build(
            session, INGESTER, mosquitto_export.ingester_hash(PASSWORD), bind_site=True
        )
        session.commit()
    with shipped_mosquitto(binary, files, tmp_path) as running:
        yield Broker(running.port, running.ingest_port, passwords, running.log)


class Client:
    """An MQTT 5 client recording CONNACK, disconnects and messages."""

    def __init__(
        self,
        port: int,
        client_id: str,
        user: str,
        password: str,
        *,
        clean_start: bool,
        will: str | None = None,
    ) -> None:
        self.connack: queue.Queue[tuple[ReasonCode, bool]] = queue.Queue()
        self.received: list[mqtt.MQTTMessage] = []
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.disconnected = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.username_pw_set(user, password)
        if will:
            self.client.will_set(will, "offline", qos=1, retain=True)
        self.client.on_connect = lambda _c, _u, flags, rc, _p: self.connack.put(
            (rc, flags.session_present)
        )
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg)
        self.client.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put(rcs)
        self.client.on_disconnect = lambda *_a: setattr(self, "disconnected", True)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if clean_start else 3600
        self.client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.client.loop_start()

    def connected(self) -> tuple[ReasonCode, bool]:
        return self.connack.get(timeout=10)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert not self.subacks.get(timeout=10)[0].is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_cannot_take_over_the_ingesters_session(broker: Broker) -> None:
    ingester = Client(broker.ingest_port, INGEST_ID, INGESTER, PASSWORD, clean_start=False)
    assert not ingester.connected()[0].is_failure
    ingester.subscribe(shared_subscription("fangxin"))
    ingester.close()
    device = Client(broker.port, "cam-a", "cam-a", broker.passwords["cam-a"], clean_start=True)
    assert not device.connected()[0].is_failure
    sent = [
        device.client.publish("fangxin/v1/k-1/cam-a/status", json.dumps({"n": i}), qos=1)
        for i in range(QUEUED)
    ]
    for info in sent:
        info.wait_for_publish(10)
    device.close()
    # the attack: cam-b connects with the ingester's client id and a clean start
    for port in (broker.port, broker.ingest_port):
        thief = Client(port, INGEST_ID, "cam-b", broker.passwords["cam-b"], clean_start=True)
        rc, _ = thief.connected()
        thief.close()
        # on the devices' port the broker renames it cam-b; the ingesters' port refuses it
        assert rc.is_failure == (port == broker.ingest_port)
    back = Client(broker.ingest_port, INGEST_ID, INGESTER, PASSWORD, clean_start=False)
    try:
        rc, session_present = back.connected()
        assert not rc.is_failure
        assert session_present, "the ingester's persistent session was dropped"
        assert wait_until(lambda: len(back.received) >= QUEUED, timeout_s=20)
        assert sorted(json.loads(m.payload)["n"] for m in back.received) == list(range(QUEUED))
    finally:
        back.close()


def test_a_device_cannot_fire_another_devices_will(broker: Broker) -> None:
    watcher = Client(broker.ingest_port, INGEST_ID, INGESTER, PASSWORD, clean_start=True)
    assert not watcher.connected()[0].is_failure
    watcher.subscribe("fangxin/v1/+/+/state")
    a = Client(
        broker.port,
        "cam-a",
        "cam-a",
        broker.passwords["cam-a"],
        clean_start=True,
        will="fangxin/v1/k-1/cam-a/state",
    )
    assert not a.connected()[0].is_failure
    a.client.publish("fangxin/v1/k-1/cam-a/state", "online", qos=1, retain=True).wait_for_publish(5)
    assert wait_until(lambda: [m.payload for m in watcher.received] == [b"online"])
    # cam-b logs in with cam-a's client id: the broker makes it "cam-b", cam-a stays connected
    thief = Client(broker.port, "cam-a", "cam-b", broker.passwords["cam-b"], clean_start=True)
    try:
        assert not thief.connected()[0].is_failure
        probe = a.client.publish("fangxin/v1/k-1/cam-a/status", "{}", qos=1)
        probe.wait_for_publish(5)
        assert not a.disconnected
        assert [m.payload for m in watcher.received] == [b"online"], "cam-a's will was fired"
    finally:
        for client in (thief, a, watcher):
            client.close()
