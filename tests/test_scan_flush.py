"""Buffered scans written by several web workers at once: they wait, they never deadlock."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.trace.certificates.models import Certificate, CertificateScan
from fangxin.trace.certificates.scans import record_scans, scan_row
from tests.trace_helpers import issue, setup


def _rows(sessions: sessionmaker[Session], codes: list[str]) -> list[dict[str, Any]]:
    """One anonymous scan row per certificate, in the order of codes."""
    now = utcnow()
    with sessions() as session:
        ids = {c.code: c.id for c in session.scalars(select(Certificate))}
    return [scan_row(ids[code], now.date(), "v-1", None, now) for code in codes]


def _waiting_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        wait = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return wait == "Lock"


def test_flushes_in_opposite_orders_wait_instead_of_deadlocking(
    client: FlaskClient, admin_key: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Worker B upserts (b, a) while A holds a and then upserts b: in arrival order, a deadlock."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its writers cannot deadlock on rows")
    secret, first = setup(client, admin_key)
    second = issue(client, secret)
    row_a, row_b = _rows(sessions, [first["code"], second["code"]])
    pid: list[int] = []
    failed: list[BaseException] = []
    ready = threading.Event()

    def worker_b() -> None:
        with sessions() as session:
            pid.append(int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            ready.set()
            try:
                record_scans(session, [row_b, row_a])
                session.commit()
            except BaseException as exc:  # noqa: BLE001  reported to the test thread below
                failed.append(exc)

    with sessions() as worker_a:
        record_scans(worker_a, [row_a])  # A holds a's row until it commits
        thread = threading.Thread(target=worker_b)
        thread.start()
        assert ready.wait(30)
        # B is blocked on a's row; sorted, it holds nothing yet (in arrival order it held b)
        for _ in range(3000):
            if _waiting_on_a_lock(engine, pid[0]):
                break
            time.sleep(0.01)
        assert _waiting_on_a_lock(engine, pid[0])
        record_scans(worker_a, [row_b])  # deadlocked here when B held b
        worker_a.commit()
    thread.join(60)
    assert not thread.is_alive()
    assert failed == []
    with sessions() as session:
        counts = session.execute(
            select(CertificateScan.certificate_id, CertificateScan.count).order_by(
                CertificateScan.certificate_id
            )
        ).all()
    assert [tuple(c) for c in counts] == [
        (row_a["certificate_id"], 2),
        (row_b["certificate_id"], 2),
    ]


def test_rows_in_any_order_store_the_same_counts(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    """Sorting the rows changes the order of the writes only, not what is counted."""
    secret, first = setup(client, admin_key)
    codes = [first["code"], *(issue(client, secret)["code"] for _ in range(4))]
    rows = _rows(sessions, codes)
    rows[2]["count"] = 5
    with sessions() as session:
        record_scans(session, list(reversed(rows)))
        record_scans(session, rows[1:3])
        session.commit()
        stored = dict(
            session.execute(select(CertificateScan.certificate_id, CertificateScan.count)).all()
        )
    expected = {r["certificate_id"]: r["count"] for r in rows}
    expected[rows[1]["certificate_id"]] += 1
    expected[rows[2]["certificate_id"]] += 5
    assert stored == expected
