"""Migration 0012_trust carries existing data: cited tests' sites become linked sites of their
subjects, existing re-issue links become transfers, so nothing issued before stops working."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from fangxin.db import make_engine, utcnow
from fangxin.db.migrate import alembic_config, upgrade
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.trace.certificates.models import (
    Certificate,
    CertificateLink,
    CertificateTransfer,
    SigningKey,
    Subject,
    SubjectSite,
)
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import PG_URL

BEFORE = "0011_gb28181_timeouts"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """An empty database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/carry.db"
        return
    if not PG_URL:
        pytest.skip("needs FANGXIN_TEST_DATABASE_URL")
    admin = make_url(PG_URL)
    name = f"{admin.database}_carry_{uuid.uuid4().hex[:8]}"
    plain = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _certificate(n: int, subject: str, basis: list[str], test: int | None) -> Certificate:
    now = utcnow()
    return Certificate(
        number=f"HGZ20261101-{n:06d}",
        code=f"CODE{n:012d}",
        subject_id=subject,
        template="producer",
        template_version="2026",
        product="菠菜",
        quantity_milli=50000,
        unit="kg",
        origin="郏县",
        issued_at=now,
        subject_name=subject,
        contact="0375-1234567",
        commitment="…",
        basis=basis,
        test_result_id=test,
        status="valid",
        key_id="k1",
        signature="x",
        created_at=now,
    )


def _old_data(session: Session) -> None:
    now = utcnow()
    for site in ("m-own", "m-lab"):
        registry.add_site(session, SiteIn(id=site, kind="market", district="郏县", name=site))
        registry.add_device(session, DeviceIn(id=f"rt-{site}", site=site, kind="rapid_test"), now)
    for sid, kind in (("s-1", "producer"), ("p-1", "purchaser")):
        session.add(Subject(id=sid, kind=kind, name=sid, contact="0375-1", district="郏县"))
    session.add(SigningKey(key_id="k1", public_key="x"))
    tests = []
    for site in ("m-own", "m-lab"):
        row = RapidTestResult(
            device_id=f"rt-{site}",
            site_id=site,
            result_id="r-1",
            ts=now - dt.timedelta(hours=1),
            received_at=now,
            item_code="pesticide-ache",
            value=10.0,
            unit="%",
            verdict="negative",
            sample_name="菠菜",
            source="mqtt",
        )
        session.add(row)
        session.flush()
        tests.append(row.id)
    own = _certificate(1, "s-1", ["self_test"], tests[0])
    hired = _certificate(2, "s-1", ["commissioned_test"], tests[1])
    child = _certificate(3, "p-1", ["quality_control"], None)
    session.add_all([own, hired, child])
    session.flush()
    session.add(CertificateLink(child_id=child.id, parent_id=own.id, quantity_milli=10000))
    session.commit()


def test_existing_evidence_and_reissues_are_carried_over(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        cfg = alembic_config(empty_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BEFORE)
    with Session(engine) as session:
        _old_data(session)
    upgrade(engine)
    with Session(engine) as session:
        links = session.execute(
            select(SubjectSite.subject_id, SubjectSite.site_id, SubjectSite.relation)
        )
        assert sorted(links) == [("s-1", "m-lab", "commissioned"), ("s-1", "m-own", "own")]
        moved = session.execute(
            select(Certificate.number, CertificateTransfer.purchaser_id).join(
                Certificate, Certificate.id == CertificateTransfer.certificate_id
            )
        )
        assert list(moved) == [("HGZ20261101-000001", "p-1")]
    engine.dispose()
