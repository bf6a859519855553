"""Web processes never own the InfluxDB sink: their points wait in an outbox the ingester relays."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from limits.storage import MemoryStorage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.models import SeriesOutbox
from fangxin.ingest.outbox import OutboxSink, relay_once
from fangxin.ingest.sinks import SqlSink
from fangxin.service.app import create_app
from tests.influx_double import InfluxDouble
from tests.results_helpers import (  # noqa: F401 - fixtures
    RT,
    SITE,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


@pytest.fixture
def double() -> Iterator[InfluxDouble]:
    with InfluxDouble() as server:
        yield server


def influx_settings(settings: Settings, double: InfluxDouble) -> Settings:
    return replace(
        settings,
        influx_url=double.url,
        influx_token=double.token,
        influx_org=double.org,
        influx_bucket=double.bucket,
    )


def limiter_timer(thread: threading.Thread) -> bool:
    """Whether thread is the expiry timer of the rate limiter's in-memory storage (not ours)."""
    function = getattr(thread, "function", None)
    return isinstance(thread, threading.Timer) and isinstance(
        getattr(function, "__self__", None), MemoryStorage
    )


def outbox_lines(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(SeriesOutbox.line).order_by(SeriesOutbox.id)))


def test_an_app_with_influx_settings_opens_no_spool_and_starts_no_thread(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], double: InfluxDouble
) -> None:
    keys = setup_market(sessions)
    threads_before = set(threading.enumerate())
    app = create_app(influx_settings(settings, double), engine)
    assert isinstance(app.extensions["fangxin"].results.sink, OutboxSink)
    response = post(app.test_client(), keys.lab, [posted("r-1", 62.0), posted("r-2", 10.0)])
    assert response.status_code == 201
    started = set(threading.enumerate()) - threads_before
    assert [t.name for t in started if not limiter_timer(t)] == []
    assert [p.name for p in settings.data_dir.iterdir() if "spool" in p.name] == []
    assert double.write_requests() == []  # the web process never wrote to InfluxDB itself
    lines = outbox_lines(sessions)
    assert len(lines) == 2
    assert all(line.startswith("rapid_test,") for line in lines)
    assert {f"site={SITE}" in line and f"device={RT}" in line for line in lines} == {True}


def test_the_ingester_relays_the_outbox_to_influx_in_order(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], double: InfluxDouble
) -> None:
    keys = setup_market(sessions)
    app = create_app(influx_settings(settings, double), engine)
    bodies = [posted(f"r-{i:03d}", float(i)) for i in range(30)]
    assert post(app.test_client(), keys.lab, bodies).status_code == 201
    sink = InfluxSink.from_settings(influx_settings(settings, double))
    try:
        with sessions.begin() as session:
            assert relay_once(session, sink, limit=20) == 20
        with sessions.begin() as session:
            assert relay_once(session, sink, limit=20) == 10
        with sessions.begin() as session:
            assert relay_once(session, sink) == 0
    finally:
        sink.close()
    assert outbox_lines(sessions) == []
    ids = [str(p.fields["id"]) for p in double.points() if p.measurement == "rapid_test"]
    assert ids == [f"r-{i:03d}" for i in range(30)]


def test_without_influx_the_web_process_writes_no_outbox(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    assert isinstance(client.application.extensions["fangxin"].results.sink, SqlSink)
    assert post(client, keys.lab, posted("r-1", 62.0)).status_code == 201
    assert outbox_lines(sessions) == []


def test_relaying_while_influx_is_down_moves_lines_to_the_spool(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], double: InfluxDouble
) -> None:
    keys = setup_market(sessions)
    app = create_app(influx_settings(settings, double), engine)
    assert post(app.test_client(), keys.lab, [posted("r-1"), posted("r-2")]).status_code == 201
    double.set_mode("unreachable")
    sink = InfluxSink.from_settings(influx_settings(settings, double))
    try:
        with sessions.begin() as session:
            assert relay_once(session, sink) == 2
        assert outbox_lines(sessions) == []
        assert sink.spool_depth == 2  # kept locally, replayed when InfluxDB is back
        double.set_mode("ok")
        assert sink.wait_drained(30)
    finally:
        sink.close()
    ids = sorted(str(p.fields["id"]) for p in double.points() if p.measurement == "rapid_test")
    assert ids == ["r-1", "r-2"]
