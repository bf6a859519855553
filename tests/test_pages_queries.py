"""The overview, KPI and site pages render in a fixed number of queries, however many devices."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from tests.devices_helpers import HOUR, kitchen, observed, outages
from tests.pages_helpers import login, seed_city
from tests.plan_helpers import licence, load


def statements(app: Flask, engine: Engine, client: FlaskClient, path: str) -> int:
    """Count the SQL statements of one uncached render of path."""
    app.extensions["fangxin"].figures.clear()
    seen: list[str] = []

    def listen(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return len(seen)


def test_renders_take_the_same_queries_for_few_and_many_devices(
    app: Flask, engine: Engine, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    observed(sessions, (0, 24 * HOUR))
    assert login(client, "admin") == 302
    few = {path: statements(app, engine, client, path) for path in ("/", "/kpi")}
    load(sessions, "licences", [licence(f"L{i}", "大型餐饮", "卫东区") for i in range(30)])
    for i in range(30):
        cameras = [f"c-{i}-{j}" for j in range(6)]
        kitchen(
            sessions,
            f"k-x{i}",
            cameras,
            district="卫东区",
            licence=f"L{i}",
            opens="09:00" if i % 3 else None,
        )
        outages(sessions, cameras[0], (HOUR, 3 * HOUR))
    many = {path: statements(app, engine, client, path) for path in ("/", "/kpi")}
    assert many == few, (few, many)
    # A small fixed bound: none of the figures runs a query per site or per device.
    assert few["/"] <= 24
    assert few["/kpi"] <= 22


def test_site_page_takes_the_same_queries_for_a_small_and_a_large_fleet(
    app: Flask, engine: Engine, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    observed(sessions, (0, 24 * HOUR))
    kitchen(sessions, "k-q", ["q-0", "q-1"], district="卫东区", opens="09:00", closes="21:00")
    outages(sessions, "q-0", (HOUR, 3 * HOUR))
    assert login(client, "admin") == 302
    paths = ("/sites/k-q", "/sites/m-001")
    few = {path: statements(app, engine, client, path) for path in paths}
    for i in range(30):
        cameras = [f"c-{i}-{j}" for j in range(6)]
        kitchen(sessions, f"k-x{i}", cameras, district="卫东区", licence=None)
        for camera in cameras:
            outages(sessions, camera, (HOUR, 2 * HOUR), (5 * HOUR, 7 * HOUR))
    many = {path: statements(app, engine, client, path) for path in paths}
    assert many == few, (few, many)
    # Nor per camera of the site: a kitchen of six cameras costs what one of two does.
    assert statements(app, engine, client, "/sites/k-x0") == few["/sites/k-q"]
    assert few["/sites/k-q"] <= 25
