"""Mosquitto password_file and acl_file export against a real broker: impersonation refused."""

from __future__ import annotations

import getpass
import queue
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.sim.broker import free_port, mosquitto_binary, wait_for_port
from tests.helpers import wait_until

INGESTER, INGESTER_PASSWORD = "fangxin-ingest", "ingest-secret-1"
# `user`: mosquitto started as root drops to user mosquitto, who cannot read our 0600 files.
CONF = """\
user {user}
persistence false
log_dest file {dir}/mosquitto.log
per_listener_settings true
listener {port} 127.0.0.1
allow_anonymous false
use_username_as_clientid true
password_file {dir}/password_file
acl_file {dir}/acl_file
listener {ingest_port} 127.0.0.1
allow_anonymous false
password_file {dir}/ingest_password_file
acl_file {dir}/ingest_acl_file
"""


@dataclass
class Fleet:
    port: int
    passwords: dict[str, str]
    broker: subprocess.Popen[bytes]
    ingest_port: int


@pytest.fixture
def fleet(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("no mosquitto binary")
    passwords = {}
    with sessions() as session:
        for site in ("k-1", "k-2"):
            registry.add_site(
                session, SiteIn(id=site, kind="kitchen", district="新华区", name=site)
            )
        for device, site in (("cam-a", "k-1"), ("cam-b", "k-2")):
            created = registry.add_device(
                session, DeviceIn(id=device, site=site, kind="camera"), utcnow()
            )
            passwords[device] = created.mqtt_password
        session.commit()
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    port, ingest_port = free_port(), free_port()
    monkeypatch.setenv(
        "FANGXIN_MQTT_URL", f"mqtt://{INGESTER}:{INGESTER_PASSWORD}@127.0.0.1:{ingest_port}"
    )
    out = CliRunner().invoke(main, ["devices", "export-mosquitto", "--out", str(tmp_path / "mq")])
    assert out.exit_code == 0, out.output
    assert "2 devices and the ingester user 'fangxin-ingest'" in out.output
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        CONF.format(port=port, ingest_port=ingest_port, dir=tmp_path / "mq", user=getpass.getuser())
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        assert wait_for_port("127.0.0.1", port)
        assert wait_for_port("127.0.0.1", ingest_port)
        yield Fleet(port, passwords, process, ingest_port)
    finally:
        process.terminate()
        process.wait(10)


class Client:
    """A paho client that records CONNACK, SUBACK, PUBACK reason codes and messages."""

    def __init__(self, port: int, user: str, password: str, client_id: str = "") -> None:
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or user,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put(rcs)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def connected(self) -> ReasonCode:
        return self.connack.get(timeout=10)

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_each_device_publishes_only_as_itself(fleet: Fleet) -> None:
    ingester = Client(fleet.ingest_port, INGESTER, INGESTER_PASSWORD)
    a = Client(fleet.port, "cam-a", fleet.passwords["cam-a"])
    try:
        assert not ingester.connected().is_failure
        assert not a.connected().is_failure
        assert not ingester.subscribe("$share/fangxin/fangxin/v1/+/+/+")[0].is_failure
        denied = a.publish("fangxin/v1/k-2/cam-b/status", b'{"forged":true}')
        assert denied.getName() == "Not authorized"
        a.publish("fangxin/v1/k-2/cam-b/alarm", b'{"forged":true}')
        ok = a.publish("fangxin/v1/k-1/cam-a/status", b'{"mine":true}')
        assert not ok.is_failure
        # the broker forwards a client's messages in order: the first to arrive is its own
        first = ingester.messages.get(timeout=10)
        assert (first.topic, first.payload) == ("fangxin/v1/k-1/cam-a/status", b'{"mine":true}')
        assert ingester.messages.empty()
    finally:
        for client in (ingester, a):
            client.close()


def test_devices_read_nothing_and_ingester_writes_nothing(fleet: Fleet) -> None:
    a = Client(fleet.port, "cam-a", fleet.passwords["cam-a"])
    b = Client(fleet.port, "cam-b", fleet.passwords["cam-b"])
    ingester = Client(fleet.ingest_port, INGESTER, INGESTER_PASSWORD)
    try:
        for client in (a, b, ingester):
            assert not client.connected().is_failure
        b.subscribe("fangxin/v1/#")  # granted by mosquitto 2.0; reads are checked per message
        ingester.subscribe("fangxin/v1/#")
        assert ingester.publish("fangxin/v1/k-1/cam-a/status", b"{}").getName() == "Not authorized"
        assert not a.publish("fangxin/v1/k-1/cam-a/status", b'{"n":1}').is_failure
        assert ingester.messages.get(timeout=10).payload == b'{"n":1}'
        # One connection is FIFO: had the broker sent b the message, it came before this SUBACK.
        b.subscribe("fangxin/v1/k-2/cam-b/nothing")
        assert b.messages.empty()
        assert ingester.messages.empty()  # its own forged publish never arrived
    finally:
        for client in (a, b, ingester):
            client.close()


@pytest.mark.parametrize(
    ("user", "password"),
    [("cam-a", "wrong"), ("cam-a", None), ("nobody", "x"), (INGESTER, "wrong")],
)
def test_bad_credentials_are_refused(fleet: Fleet, user: str, password: str | None) -> None:
    client = Client(
        fleet.port, user, password if password is not None else fleet.passwords["cam-b"]
    )
    try:
        assert client.connected().getName() in ("Bad user name or password", "Not authorized")
    finally:
        client.close()


def test_rotated_and_retired_devices_after_re_export(
    fleet: Fleet, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as session:
        new = registry.rotate_credentials(session, "cam-a", utcnow())
        registry.set_active(session, "cam-b", False, utcnow())
        session.commit()
    out = CliRunner().invoke(main, ["devices", "export-mosquitto", "--out", str(tmp_path / "mq")])
    assert out.exit_code == 0, out.output
    assert "1 devices" in out.output
    fleet.broker.send_signal(signal.SIGHUP)  # mosquitto reloads its password and ACL files
    log = tmp_path / "mq" / "mosquitto.log"
    assert wait_until(lambda: "Reloading config." in log.read_text())
    for user, password, expected in (
        ("cam-a", fleet.passwords["cam-a"], "Bad user name or password"),
        ("cam-a", new.mqtt_password, "Success"),
        ("cam-b", fleet.passwords["cam-b"], "Bad user name or password"),
    ):
        client = Client(fleet.port, user, password)
        try:
            code = client.connected()
            assert code.getName() in (
                expected,
                "Not authorized" if expected != "Success" else expected,
            )
        finally:
            client.close()
