"""The Flask app factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import check_migrated, make_engine, make_session_factory

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class AppState:
    """What every request may need: settings and the database."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


def state() -> AppState:
    """Return the running app's state."""
    from flask import current_app

    app_state: AppState = current_app.extensions["fangxin"]
    return app_state


def db_session() -> Session:
    """Return this request's session; the handler commits, teardown closes."""
    if "db" not in g:
        g.db = state().sessions()
    session: Session = g.db
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the web app; refuses to start on a database that is not migrated to head."""
    from fangxin.service import api, health, problems, security

    settings = settings or Settings.from_env()
    settings.check_production()
    engine = engine or make_engine(settings.database_url)
    check_migrated(engine)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or "dev-only-not-secret",
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["fangxin"] = AppState(settings, engine, make_session_factory(engine))
    app.teardown_appcontext(_close_session)
    problems.init_app(app)
    security.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    from fangxin.service import results_api, results_workflow_api

    app.register_blueprint(results_api.bp)
    app.register_blueprint(results_workflow_api.bp)
    from fangxin.service import (
        certificates_api,
        certificates_labels,
        certificates_market,
        certificates_pages,
    )

    for module in (certificates_api, certificates_labels, certificates_market, certificates_pages):
        app.register_blueprint(module.bp)
    from fangxin.service import devices_api

    app.register_blueprint(devices_api.bp)
    from fangxin.service import pages

    pages.init_app(app)
    from fangxin.service import audit, metrics, ratelimit

    ratelimit.init_app(app, settings)  # wraps the views above: keep it after every blueprint
    audit.init_app(app)
    metrics.init_app(app)
    return app
