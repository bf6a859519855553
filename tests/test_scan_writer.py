"""The scan buffer's writer thread: scans written off the request path, none lost."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory, utcnow
from fangxin.service.app import create_app
from fangxin.service.context import AppState
from fangxin.trace.certificates.models import Certificate, CertificateScan
from fangxin.trace.certificates.scans import ScanBuffer, write_scans
from tests.trace_helpers import setup

UA = {"User-Agent": "test"}


def _scans(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.coalesce(func.sum(CertificateScan.count), 0))) or 0)


def test_scans_are_written_by_the_thread_without_another_request(
    settings: Settings, engine: Engine, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    app = create_app(replace(settings, scan_flush_s=0.05), engine)
    client = app.test_client()
    _, cert = setup(client, admin_key)
    for _ in range(3):
        assert client.get(f"/c/{cert['code']}", headers=UA).status_code == 200
    deadline = time.monotonic() + 30  # a wait for the thread, not a timing assertion
    while _scans(sessions) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _scans(sessions) == 3
    state: AppState = app.extensions["fangxin"]
    state.scan_buffer.stop()


def test_stopping_writes_every_buffered_scan(
    settings: Settings, engine: Engine, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    """What a worker's exit runs (atexit): the scans still buffered reach the database."""
    app = create_app(replace(settings, scan_flush_s=3600), engine)
    client = app.test_client()
    _, cert = setup(client, admin_key)
    for n in range(5):
        client.get(f"/c/{cert['code']}", headers={"User-Agent": f"phone-{n % 2}"})
    assert _scans(sessions) == 0  # not due for an hour, and no request writes them
    state: AppState = app.extensions["fangxin"]
    state.scan_buffer.stop()
    assert _scans(sessions) == 5
    with sessions() as session:
        assert len(session.scalars(select(CertificateScan)).all()) == 2  # two visitors


def test_a_failed_write_keeps_its_scans_for_the_next(tmp_path: Path) -> None:
    # a real failure: a database without the scans table (never migrated)
    unmigrated = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    buffer = ScanBuffer(3600, partial(write_scans, unmigrated))
    now = utcnow()
    buffer.add(1, now.date(), "v-1", None, now)
    buffer.add(1, now.date(), "v-1", None, now)
    with pytest.raises(OperationalError):
        buffer.flush()
    buffer.add(1, now.date(), "v-1", None, now)
    rows = buffer.take()
    assert [(r["certificate_id"], r["visitor"], r["count"]) for r in rows] == [(1, "v-1", 3)]


def test_a_scan_of_a_certificate_no_longer_stored_sinks_only_itself(
    settings: Settings, engine: Engine, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    """The database refuses one row for good: the rest of the batch is written, once."""
    app = create_app(replace(settings, scan_flush_s=3600), engine)
    _, cert = setup(app.test_client(), admin_key)
    with sessions() as session:
        cert_id = session.scalar(select(Certificate.id).where(Certificate.code == cert["code"]))
    assert cert_id is not None
    buffer = ScanBuffer(3600, partial(write_scans, sessions))
    now = utcnow()
    buffer.add(cert_id, now.date(), "v-1", None, now)
    buffer.add(cert_id + 1000, now.date(), "v-2", None, now)  # no such certificate
    buffer.add(cert_id, now.date(), "v-3", None, now)
    assert buffer.flush()
    assert _scans(sessions) == 2
    assert buffer.take() == []  # the refused row is not retried forever
    assert not buffer.flush()
    assert _scans(sessions) == 2


def test_a_stopped_buffer_starts_again_and_leaves_nothing_for_exit(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    buffer = ScanBuffer(3600, partial(write_scans, sessions))
    buffer.start()
    first = buffer._thread
    buffer.stop()
    assert first is not None
    assert not first.is_alive()
    buffer.start()  # a later scan in the same process gets a writer again
    assert buffer._thread is not None
    assert buffer._thread.is_alive()
    buffer.stop()
