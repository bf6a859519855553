"""Deployment files at work: mosquitto.conf on a real broker, the entry point, the healthchecks."""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import subprocess
import sys
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

from fangxin.config import Settings
from fangxin.contract.topics import shared_subscription
from fangxin.db import utcnow
from fangxin.devices import mosquitto_export, registry
from fangxin.devices.models import IngesterRun
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.sim.broker import mosquitto_binary
from tests.deploy_helpers import ROOT, shipped_mosquitto
from tests.helpers import dumps, status, wait_until

DOCKER = ROOT / "deploy" / "docker"
INGESTER, PASSWORD = "fangxin-ingest", "ingest0secret"
# Above Mosquitto's default max_queued_messages (1000): the deployment's limit must hold them.
BACKLOG = 1500


@dataclass
class Broker:
    port: int
    device_password: str
    log: Path
    ingest_port: int = 0


@pytest.fixture
def broker(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Broker]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("no mosquitto binary")
    with sessions() as session:
        registry.add_site(session, SiteIn(id="m-d1", kind="market", district="新华区", name="m"))
        created = registry.add_device(
            session, DeviceIn(id="cam-d1", site="m-d1", kind="camera"), utcnow()
        )
        files = mosquitto_export.build(
            session, INGESTER, mosquitto_export.ingester_hash(PASSWORD), bind_site=True
        )
        session.commit()
    with shipped_mosquitto(binary, files, tmp_path) as running:
        yield Broker(running.port, created.mqtt_password, running.log, running.ingest_port)


class Client:
    """An MQTT 5 client recording CONNACK, SUBACK and messages."""

    def __init__(self, port: int, client_id: str, user: str | None, password: str | None) -> None:
        self.connack: queue.Queue[tuple[ReasonCode, bool]] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.received: list[bytes] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, flags, rc, _p: self.connack.put(
            (rc, flags.session_present)
        )
        self.client.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put(rcs)
        self.client.on_message = lambda _c, _u, msg: self.received.append(bytes(msg.payload))
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600  # a persistent session, as the ingester keeps
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def connected(self) -> tuple[ReasonCode, bool]:
        return self.connack.get(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mosquitto_runs_the_deployment_conf(broker: Broker) -> None:
    anonymous = Client(broker.port, "nobody", None, None)
    try:
        assert anonymous.connected()[0].getName() == "Not authorized"
    finally:
        anonymous.close()
    ingester = Client(broker.ingest_port, "fangxin-ingest-test", INGESTER, PASSWORD)
    rc, _ = ingester.connected()
    assert not rc.is_failure
    ingester.client.subscribe(shared_subscription("fangxin"), qos=1)
    assert ingester.subacks.get(timeout=10)[0].value == 1  # granted QoS 1
    ingester.close()
    # the ingester is away: a device's backlog beyond Mosquitto's default queue of 1000 waits
    device = Client(broker.port, "cam-d1", "cam-d1", broker.device_password)
    try:
        assert not device.connected()[0].is_failure
        sent = [
            device.client.publish("fangxin/v1/m-d1/cam-d1/status", dumps(status(n=i)), qos=1)
            for i in range(BACKLOG)
        ]
        for info in sent:
            info.wait_for_publish(10)
    finally:
        device.close()
    back = Client(broker.ingest_port, "fangxin-ingest-test", INGESTER, PASSWORD)
    try:
        rc, session_present = back.connected()
        assert not rc.is_failure
        assert session_present
        assert wait_until(lambda: len(back.received) >= BACKLOG, timeout_s=30)
        assert len(back.received) == BACKLOG
    finally:
        back.close()
    assert "Error" not in broker.log.read_text()


def run_entrypoint(tmp_path: Path, args: list[str], **env: str) -> str:
    """Run entrypoint.sh with a stand-in `fangxin` on PATH that prints its client id and args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "fangxin"
    stand_in.write_text('#!/bin/sh\necho "${FANGXIN_INGEST_CLIENT_ID:-unset} $*"\n')
    stand_in.chmod(0o755)
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FANGXIN_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), *args],
        env=full_env | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def test_entrypoint_keeps_an_ingesters_client_id(tmp_path: Path) -> None:
    first = run_entrypoint(tmp_path, ["fangxin", "ingest", "--shared", "fangxin"])
    assert first == f"fangxin-ingest-{os.uname().nodename} ingest --shared fangxin"
    (tmp_path / "data" / "ingest-client-id").write_text("fangxin-ingest-0ld\n")
    # the replacement container (another hostname) resumes the session of the id kept
    again = run_entrypoint(tmp_path, ["fangxin", "ingest", "--shared", "fangxin"])
    assert again == "fangxin-ingest-0ld ingest --shared fangxin"
    fixed = run_entrypoint(tmp_path, ["fangxin", "ingest"], FANGXIN_INGEST_CLIENT_ID="own")
    assert fixed == "own ingest"
    assert run_entrypoint(tmp_path, ["fangxin", "serve"]) == "unset serve"


def healthcheck(mode: str, db_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run deploy/docker/healthcheck.py as the container would."""
    env = {
        "PATH": os.environ["PATH"],
        "FANGXIN_DATABASE_URL": db_url,
        "FANGXIN_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, str(DOCKER / "healthcheck.py"), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_healthcheck_of_an_ingester(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    (tmp_path / "ingest-client-id").write_text("fangxin-ingest-hc\n")
    assert healthcheck("database", db_url, tmp_path).returncode == 0
    down = healthcheck("ingest", db_url, tmp_path)
    assert down.returncode == 1
    assert "no open run" in down.stderr
    now = utcnow()
    with sessions.begin() as session:
        session.add(IngesterRun(client_id="fangxin-ingest-hc", started_at=now, last_alive_at=now))
        session.add(IngesterRun(client_id="other", started_at=now, last_alive_at=now))
    assert healthcheck("ingest", db_url, tmp_path).returncode == 0
    with sessions.begin() as session:
        session.query(IngesterRun).filter_by(client_id="fangxin-ingest-hc").update(
            {"last_alive_at": now - dt.timedelta(minutes=5)}
        )
    stale = healthcheck("ingest", db_url, tmp_path)
    assert stale.returncode == 1
    assert "last alive" in stale.stderr
    missing = healthcheck("database", f"sqlite:///{tmp_path}/none.db", tmp_path)
    assert missing.returncode == 1
    assert "fangxin db upgrade" in missing.stderr


def test_image_build_context(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, flags=re.M)
    assert stages == ["builder", "runtime"]
    final = dockerfile.split("AS runtime", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final, flags=re.M)
    assert user.split(":")[0] not in ("0", "root")
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "FANGXIN_ENV=production" in final  # no generated secrets inside a container
    # .dockerignore lets in only what the Dockerfile copies, and never an .env file
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert ignore[[i for i, line in enumerate(ignore) if not line.startswith("#")][0]] == "*"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
            assert any(path == a or path.startswith(f"{a}/") for a in allowed), path
    assert not [a for a in allowed if ".env" in a]
    assert Settings.from_env({"FANGXIN_DATA_DIR": "/var/lib/fangxin"}).data_dir == Path(
        "/var/lib/fangxin"
    )
