"""create_app compiles every template, so the first page after start-up compiles none (issue 17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.service.app import create_app
from tests.pages_helpers import login, seed_city


def _compiles(app: Flask) -> list[str]:
    """Record the name of every template the app's Jinja environment compiles from now on."""
    seen: list[str] = []
    env = app.jinja_env
    compile_source = env.compile

    def spy(source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(name))
        return compile_source(source, name, *args, **kwargs)

    env.compile = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("warm", [True, False])
def test_first_pages_compile_no_template(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    warm: bool,
) -> None:
    seed_city(sessions)
    app = create_app(settings, engine, warm=warm)
    compiled = _compiles(app)
    client = app.test_client()
    assert login(client, "admin") == 302
    for path in ("/", "/kpi", "/charts/uptime.svg", "/sites/m-001"):
        assert client.get(path).status_code == 200
    if warm:
        assert compiled == []
    else:  # the same requests compile their templates when nothing was warmed
        assert {"dash_login.html", "dash_overview.html", "dash_kpi.html"} <= set(compiled)


def test_warm_up_compiles_every_template(settings: Settings, engine: Engine) -> None:
    app = create_app(settings, engine, lambda: dt.datetime.now(dt.UTC))
    names = app.jinja_env.list_templates()
    compiled = _compiles(app)
    for name in names:
        app.jinja_env.get_template(name)
    assert names
    assert compiled == []
