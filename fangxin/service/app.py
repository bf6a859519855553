"""The Flask app factory: every blueprint and extension, listed and wired in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import Any

from flask import Flask
from sqlalchemy import Engine
from werkzeug.routing import IntegerConverter, ValidationError

from fangxin.config import Settings
from fangxin.db import check_migrated, make_engine, utcnow
from fangxin.service import audit, health, metrics, problems, ratelimit, security
from fangxin.service.api import (
    catalogue,
    certificates,
    custody,
    devices,
    followups,
    labels,
    market,
    plan,
    proofs,
    results,
    sites,
    webhooks,
)
from fangxin.service.context import build_state, close_session
from fangxin.service.openapi import Part, build_document
from fangxin.service.pages import scan, views
from fangxin.trace.results.verdicts import VERDICT_LABELS

# What /openapi.json describes, in the document's order.
OPENAPI_PARTS: tuple[Part, ...] = (
    sites.openapi,
    health.openapi,
    results.openapi,
    followups.openapi,
    catalogue.openapi,
    webhooks.openapi,
    certificates.openapi,
    custody.openapi,
    proofs.openapi,
    labels.openapi,
    market.openapi,
    scan.openapi,
    devices.openapi,
    plan.openapi,
)


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once per process, when first asked for)."""
    return build_document(OPENAPI_PARTS)


class KeyConverter(IntegerConverter):
    """`<int:…>` in paths: only values a database key can hold; larger ones match no route (404)."""

    def to_python(self, value: str) -> int:
        """Refuse numbers beyond a signed 64-bit key (SQLite and PostgreSQL would raise)."""
        number = int(super().to_python(value))
        if number > 2**63 - 1:
            raise ValidationError()
        return number


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
    *,
    warm: bool = True,
) -> Flask:
    """Build the web app; refuses to start on a database that is not migrated to head.

    `clock` is the app's one "now" (AppState.clock): tests pass one they control. `warm`
    compiles every template now (see warm_up); the tests' app fixture skips it.
    """
    settings = settings or Settings.from_env()
    settings.check_production()
    engine = engine or make_engine(settings.database_url)
    check_migrated(engine)
    app = Flask(__name__)
    app.url_map.converters["int"] = KeyConverter  # before any blueprint adds its rules
    app.config.update(
        SECRET_KEY=security.session_secret(settings),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # Every page writes a verdict with the one set of labels (scan page, board, dashboard).
    app.jinja_env.globals["verdict_labels"] = VERDICT_LABELS
    app.extensions["fangxin"] = build_state(settings, engine, openapi_document, clock)
    app.teardown_appcontext(close_session)
    problems.init_app(app)
    security.init_app(app)
    app.register_blueprint(sites.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(results.bp)
    app.register_blueprint(followups.bp)
    app.register_blueprint(catalogue.bp)
    app.register_blueprint(webhooks.bp)
    for module in (certificates, custody, proofs, labels, market, scan):
        app.register_blueprint(module.bp)
    app.register_blueprint(devices.bp)
    app.register_blueprint(plan.bp)
    views.init_app(app)
    ratelimit.init_app(app, settings)  # wraps the views above: keep it after every blueprint
    audit.init_app(app)
    metrics.init_app(app)
    if warm:
        warm_up(app)
    return app


def warm_up(app: Flask) -> None:
    """Compile every template now, so that no visitor's first page pays for it."""
    # Compiling them all costs about 0.1 s of CPU once; the first dashboard page paid 20-50 ms
    # for its own (issue 17: the first request after start-up as fast as the next ones).
    # gunicorn forks its workers after create_app, so each worker starts with them compiled.
    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
