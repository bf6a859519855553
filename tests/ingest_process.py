"""Ingesters in their own processes (kill -9 needs one): start, wait until subscribed, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.models import IngesterRun
from fangxin.sim.broker import RunningBroker
from tests.helpers import wait_until


def start_ingester(
    db_url: str, broker: RunningBroker, client_id: str, log: Path, shared: str | None = None
) -> subprocess.Popen[bytes]:
    """Start `fangxin ingest` with a persistent session under this client id."""
    env = {
        **os.environ,
        "FANGXIN_DATABASE_URL": db_url,
        "FANGXIN_MQTT_URL": broker.url,
        "FANGXIN_INGEST_CLIENT_ID": client_id,
        "FANGXIN_MQTT_SESSION_EXPIRY_S": "600",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fangxin.cli",
                "ingest",
                *(["--shared", shared] if shared else []),
            ],
            env=env,
            stdout=out,
            stderr=out,
        )


def runs_of(sessions: sessionmaker[Session], client_id: str) -> int:
    """Count the observed runs an ingester opened (one per start, after its SUBACK)."""
    with sessions() as session:
        found = session.scalar(
            select(func.count()).select_from(IngesterRun).where(IngesterRun.client_id == client_id)
        )
    return found or 0


def wait_subscribed(
    sessions: sessionmaker[Session],
    proc: subprocess.Popen[bytes],
    client_id: str,
    log: Path,
    runs_before: int = 0,
) -> None:
    """Wait until the process has subscribed: `fangxin ingest` opens its run right after SUBACK.

    Messages published before the first subscription have no session to wait in: a test that
    publishes after a fixed sleep loses them when the machine is slow to start Python.
    """

    def ready() -> bool:
        assert proc.poll() is None, f"ingester exited with {proc.returncode}:\n{log.read_text()}"
        return runs_of(sessions, client_id) > runs_before

    assert wait_until(ready, 120), f"ingester {client_id} never subscribed:\n{log.read_text()}"


def start_subscribed(
    sessions: sessionmaker[Session],
    db_url: str,
    broker: RunningBroker,
    client_id: str,
    log: Path,
    shared: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start an ingester process and return once it is subscribed."""
    before = runs_of(sessions, client_id)
    proc = start_ingester(db_url, broker, client_id, log, shared)
    wait_subscribed(sessions, proc, client_id, log, before)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM a running ingester (it drains, acks and exits 0) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)
