"""Helpers of the rapid-test tests: a market with instruments and keys, posting, the MQTT door."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from fangxin.db import make_engine
from fangxin.ingest.batch import BatchStats, RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.service.auth import create_key
from fangxin.trace.results.models import RapidTestResult, TestItem, TestItemLimit
from tests.helpers import CST, dumps, register, result

SITE, RT, RT2 = "m-300", "rt-300", "rt-301"


@dataclass(frozen=True, slots=True)
class Market:
    """A registered market with two rapid-test instruments and API keys."""

    site: str
    lab: str
    admin: str
    regulator: str


def setup_market(
    sessions: sessionmaker[Session], site: str = SITE, district: str = "新华区"
) -> Market:
    """Register the market, its instruments and the keys the tests use."""
    devices = [RT, RT2] if site == SITE else [f"{site}-rt"]
    register(sessions, site, dict.fromkeys(devices, "rapid_test"))
    with sessions() as session:
        keys = Market(
            site,
            create_key(session, "lab", site_id=site),
            create_key(session, "admin"),
            create_key(session, "regulator", district=district),
        )
        session.commit()
    return keys


def auth(key: str) -> dict[str, str]:
    """Return the header of a bearer key."""
    return {"Authorization": f"Bearer {key}"}


def posted(rid: str, value: object = 37.5, **extra: Any) -> dict[str, Any]:
    """Build an HTTP result: the MQTT `result` plus site and device."""
    body = result(rid, value, **extra)
    body.setdefault("site", SITE)
    body.setdefault("device", RT)
    return body


def post(client: FlaskClient, key: str, body: Any, query: str = "") -> TestResponse:
    """POST results with a key."""
    return client.post(f"/api/v1/results{query}", json=body, headers=auth(key))


def mqtt(
    sessions: sessionmaker[Session], *bodies: dict[str, Any], site: str = SITE, device: str = RT
) -> BatchStats:
    """Run results through the MQTT door's pipeline, as the ingester does."""
    now = dt.datetime.now(dt.UTC)
    topic = f"fangxin/v1/{site}/{device}/result"
    with sessions.begin() as session:
        return Pipeline(SqlSink()).process(
            session, [RawMessage(topic, dumps(b), now) for b in bodies]
        )


def today_at(hour: int, minute: int = 0) -> str:
    """Return an RFC 3339 time today in China, no later than now."""
    now = dt.datetime.now(CST)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return min(at, now).isoformat()


@pytest.fixture(scope="session")
def seeded_catalogue(sqlite_template: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read the catalogue the migrations seed (items and per-category limits) once."""
    engine = make_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as conn:
        items = [dict(r._mapping) for r in conn.execute(select(TestItem.__table__))]
        limits = [dict(r._mapping) for r in conn.execute(select(TestItemLimit.__table__))]
    engine.dispose()
    return items, limits


def restore_catalogue(
    sessions: sessionmaker[Session], seeded: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    """Put the catalogue back as seeded (PostgreSQL keeps test_items between tests)."""
    items, limits = seeded
    codes = [i["code"] for i in items]
    with sessions.begin() as session:
        session.execute(delete(TestItemLimit))
        for item in items:
            session.merge(TestItem(**item))
        used = select(RapidTestResult.item_code)
        session.execute(
            delete(TestItem).where(TestItem.code.not_in(codes), TestItem.code.not_in(used))
        )
        session.flush()
        # without ids: the per-test TRUNCATE ... RESTART IDENTITY rewound the sequence
        session.execute(insert(TestItemLimit), [{**lim, "id": None} for lim in limits])


@pytest.fixture
def pristine_catalogue(
    sessions: sessionmaker[Session],
    seeded_catalogue: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> Iterator[None]:
    """Start from the seeded catalogue and leave it so for the tests that follow."""
    restore_catalogue(sessions, seeded_catalogue)
    yield
    restore_catalogue(sessions, seeded_catalogue)
