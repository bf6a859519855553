"""A private MQTT broker for the demo and the tests: mosquitto when installed, else amqtt."""

from __future__ import annotations

import getpass
import logging
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

MOSQUITTO_CONF = """\
# Run as whoever started us: mosquitto started as root would otherwise switch to the
# "mosquitto" user, which cannot write its persistence file into our data dir.
user {user}
listener {port} {host}
{auth}persistence true
persistence_location {store}/
autosave_interval 1
# Ingesters keep persistent sessions: hold their backlog while they restart.
max_queued_messages 1000000
max_inflight_messages 4000
log_dest file {log}
"""
# The demo's broker: no anonymous clients, each device its own user and topics (as
# deploy/mosquitto/mosquitto.conf does), and a client id that is its username.
MOSQUITTO_AUTH = """\
allow_anonymous false
use_username_as_clientid true
password_file {dir}/password_file
acl_file {dir}/acl_file
"""


@dataclass(slots=True)
class RunningBroker:
    """A broker process we started."""

    kind: str
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Return its mqtt:// URL."""
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float = 15.0) -> bool:
    """Wait until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def mosquitto_binary() -> str | None:
    """Find a mosquitto binary (Debian puts it in /usr/sbin, often off a user's PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def start_broker(
    data_dir: Path,
    port: int,
    host: str = "127.0.0.1",
    prefer: str = "mosquitto",
    auth_dir: Path | None = None,
) -> RunningBroker:
    """Start a broker on host:port keeping its files under data_dir.

    With auth_dir (holding `password_file` and `acl_file`, see `fangxin.sim.broker_auth`) the
    broker refuses anonymous clients; without it anyone may connect (the tests' brokers).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = mosquitto_binary() if prefer == "mosquitto" else None
    if binary:
        store = data_dir / "mosquitto"
        store.mkdir(exist_ok=True)
        conf = data_dir / "mosquitto.conf"
        conf.write_text(
            MOSQUITTO_CONF.format(
                user=getpass.getuser(),
                port=port,
                host=host,
                store=store,
                log=data_dir / "mosquitto.log",
                auth=MOSQUITTO_AUTH.format(dir=auth_dir) if auth_dir else "allow_anonymous true\n",
            )
        )
        cmd = [binary, "-c", str(conf)]
        kind = "mosquitto"
    else:
        cmd = [
            sys.executable,
            "-m",
            "fangxin.sim.amqtt_broker",
            "--host",
            host,
            "--port",
            str(port),
        ]
        if auth_dir is not None:
            cmd += ["--password-file", str(auth_dir / "password_file")]
        kind = "amqtt"
    log = (data_dir / f"{kind}.out").open("ab")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    broker = RunningBroker(kind, host, port, process)
    if not wait_for_port(host, port):
        broker.stop()
        raise RuntimeError(f"{kind} did not start on {host}:{port}; see {data_dir}/{kind}.out")
    return broker
