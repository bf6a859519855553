"""Fixtures: a migrated database per test (SQLite; PostgreSQL when configured), brokers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import fangxin.service.app
from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.migrations.tables import all_tables
from fangxin.service.app import create_app
from fangxin.service.auth import create_key
from fangxin.service.context import AppState, build_state
from fangxin.sim.broker import RunningBroker, free_port, mosquitto_binary, start_broker

PG_URL = os.environ.get("FANGXIN_TEST_DATABASE_URL")
MQTT_URL = os.environ.get("FANGXIN_TEST_MQTT_URL")
DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])
# Tables whose rows come from migrations and must survive the per-test wipe.
SEEDED = {"alembic_version", "test_items", "test_item_limits", "coverage_targets"}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "fangxin.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    """Reset the PostgreSQL test database's schema and migrate it once per run."""
    assert PG_URL
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()
    return PG_URL


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a freshly migrated, empty database."""
    if request.param == "sqlite":
        path = tmp_path / "fangxin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_migrated")
    engine = make_engine(url)
    tables = [t.name for t in all_tables().sorted_tables if t.name not in SEEDED]
    with engine.begin() as conn:
        # The audit log refuses TRUNCATE (migration 0010): the test superuser skips triggers.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Return an engine on the test database."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory on the test database."""
    return make_session_factory(engine)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Return settings for a test: its own data dir and database."""
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        ingest_client_id=f"t-{uuid.uuid4().hex[:8]}",
        webhooks_allow_private=True,  # the tests' receivers listen on loopback
    )


class MovableClock:
    """The app's clock in tests: the wall clock until a test sets it, then exactly that time."""

    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.at if self.at is not None else utcnow()

    def set(self, at: dt.datetime) -> None:
        """Judge every rule at `at` from now on; kept in UTC, as the wall clock gives it."""
        assert at.tzinfo is not None
        self.at = at.astimezone(dt.UTC)


@pytest.fixture
def clock() -> MovableClock:
    """Return the clock the test's app reads "now" from."""
    return MovableClock()


@pytest.fixture(autouse=True)
def close_apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stop the background writers of every app a test built, before the next test's wipe.

    Left running, a test's scan writer wrote its buffered scans into the next test's database
    (ids restart at 1 after each wipe), and logged tracebacks in the middle of other tests.
    """
    built: list[AppState] = []

    def build_and_keep(*args: Any, **kwargs: Any) -> AppState:
        built.append(build_state(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(fangxin.service.app, "build_state", build_and_keep)
    yield
    for state in built:
        state.close()


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: MovableClock) -> Flask:
    """Return the web app on the test database, reading its time from `clock`."""
    return create_app(settings, engine, clock, warm=False)  # tests/test_warm_up.py warms


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()


@pytest.fixture
def admin_key(sessions: sessionmaker[Session]) -> str:
    """Return an admin API key."""
    with sessions() as session:
        key = create_key(session, "admin", name="test")
        session.commit()
    return key


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return FANGXIN_TEST_MQTT_URL, else a private broker (mosquitto if installed, else amqtt)."""
    if MQTT_URL:
        yield MQTT_URL
        return
    broker = start_broker(tmp_path_factory.mktemp("broker"), free_port())
    yield broker.url
    broker.stop()


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[RunningBroker]:
    """Start a private mosquitto with the deployment's queue settings (crash tests need them)."""
    if mosquitto_binary() is None:
        pytest.skip("no mosquitto binary: crash safety is only promised on mosquitto or EMQX")
    broker = start_broker(tmp_path / "mosquitto", free_port())
    yield broker
    broker.stop()


def unique(prefix: str) -> str:
    """Return an id unique to this test run (brokers are shared between tests)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
