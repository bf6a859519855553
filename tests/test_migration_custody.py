"""Migration 0012_trust carries existing data: cited tests' sites become linked sites of their
subjects, existing re-issue links become transfers, so nothing issued before stops working."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import Column, Connection, MetaData, Table, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from fangxin.db import make_engine, utcnow
from fangxin.db.migrate import alembic_config, upgrade
from fangxin.devices.models import Device, Site
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


def _old(conn: Connection, model: Any) -> Table:
    """The model's table as it stood at BEFORE: later revisions' columns left out."""
    existing = {c["name"] for c in inspect(conn).get_columns(model.__tablename__)}
    columns = (
        Column(c.name, c.type, primary_key=c.primary_key)
        for c in model.__table__.columns
        if c.name in existing
    )
    return Table(model.__tablename__, MetaData(), *columns)


def _certificate(n: int, subject: str, basis: list[str], test: int | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": n,
        "number": f"HGZ20261101-{n:06d}",
        "code": f"CODE{n:012d}",
        "subject_id": subject,
        "template": "producer",
        "template_version": "2026",
        "product": "菠菜",
        "quantity_milli": 50000,
        "unit": "kg",
        "origin": "郏县",
        "issued_at": now,
        "subject_name": subject,
        "contact": "0375-1234567",
        "commitment": "…",
        "basis": basis,
        "test_result_id": test,
        "status": "valid",
        "key_id": "k1",
        "signature": "x",
        "created_at": now,
    }


def _old_data(conn: Connection) -> None:
    """Rows as a deployment at BEFORE holds them (written with that revision's columns only)."""
    now = utcnow()
    for n, site in enumerate(("m-own", "m-lab"), start=1):
        conn.execute(
            insert(_old(conn, Site)),
            {"id": site, "kind": "market", "district": "郏县", "name": site, "created_at": now},
        )
        device = {"id": f"rt-{site}", "site_id": site, "kind": "rapid_test", "interval_s": 60}
        conn.execute(insert(_old(conn, Device)), {**device, "active": True, "created_at": now})
        conn.execute(
            insert(_old(conn, RapidTestResult)),
            {
                "id": n,
                "device_id": f"rt-{site}",
                "site_id": site,
                "result_id": "r-1",
                "ts": now - dt.timedelta(hours=1),
                "received_at": now,
                "item_code": "pesticide-ache",
                "value": 10.0,
                "unit": "%",
                "verdict": "negative",
                "verdict_mismatch": False,
                "sample_name": "菠菜",
                "source": "mqtt",
            },
        )
    for sid, kind in (("s-1", "producer"), ("p-1", "purchaser")):
        conn.execute(
            insert(_old(conn, Subject)),
            {"id": sid, "kind": kind, "name": sid, "contact": "0375-1", "district": "郏县"}
            | {"created_at": now},
        )
    conn.execute(
        insert(_old(conn, SigningKey)),
        {"key_id": "k1", "algorithm": "Ed25519", "public_key": "x", "created_at": now},
    )
    certificates = _old(conn, Certificate)
    conn.execute(insert(certificates), _certificate(1, "s-1", ["self_test"], 1))
    conn.execute(insert(certificates), _certificate(2, "s-1", ["commissioned_test"], 2))
    conn.execute(insert(certificates), _certificate(3, "p-1", ["quality_control"], None))
    conn.execute(
        insert(_old(conn, CertificateLink)),
        {"child_id": 3, "parent_id": 1, "quantity_milli": 10000},
    )


def test_existing_evidence_and_reissues_are_carried_over(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        cfg = alembic_config(empty_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BEFORE)
    with engine.begin() as conn:
        _old_data(conn)
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
