"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import logging
import socket
import urllib.request
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from fangxin.db import NotMigratedError, check_migrated
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.service import bodies
from fangxin.service.context import db_session, state
from fangxin.service.metrics import render
from fangxin.service.openapi import Spec, json_response
from fangxin.service.problems import problem_response

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer that the process is alive."""
    return jsonify(status="ok")


def _check_database() -> str | None:
    try:
        db_session().execute(text("SELECT 1"))
        check_migrated(state().engine)
    except NotMigratedError as exc:
        _LOGGER.warning("Readiness: %s", exc)
        return "not migrated"
    except Exception as exc:  # readiness reports any failure, it does not raise
        _LOGGER.warning("Readiness: database unreachable: %r", exc)
        return "unreachable"
    return None


def _check_broker() -> str | None:
    url = state().settings.mqtt_url
    if not url:
        return None
    address = BrokerAddress.parse(url)
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            return None
    except OSError as exc:  # the page is anonymous: states only, the address goes to the log
        _LOGGER.warning("Readiness: broker %s unreachable: %s", address.url(), exc)
        return "unreachable"


def _check_sink() -> str | None:
    settings = state().settings
    if not settings.influx_url:
        return None  # series in SQL: healthy when the database is
    try:
        with urllib.request.urlopen(settings.influx_url.rstrip("/") + "/health", timeout=1.0):
            return None
    except Exception as exc:
        _LOGGER.warning("Readiness: InfluxDB unreachable: %s", exc)
        return "unreachable"


@bp.get("/readyz")
def readyz() -> Response:
    """Check the database, the broker and the time-series sink (states only: it is anonymous)."""
    checks = {"database": _check_database(), "broker": _check_broker(), "sink": _check_sink()}
    body: dict[str, Any] = {name: problem or "ok" for name, problem in checks.items()}
    if any(checks.values()):
        return problem_response(503, "Not ready", "a dependency is unavailable", checks=body)
    return jsonify(status="ready", checks=body)


@bp.get("/metrics")
def metrics() -> Response:
    """Expose ingest, dead-letter, spool and HTTP latency figures in Prometheus text format."""
    return render()


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI 3.1 description of the HTTP API."""
    return jsonify(state().openapi_document())


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    ready = json_response(bodies.READY)
    spec.add("get", "/healthz", "Liveness", {"200": json_response(bodies.HEALTH)}, secured=False)
    spec.add("get", "/readyz", "Readiness: database, broker, sink", {"200": ready}, secured=False)
    text = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    spec.add("get", "/metrics", "Prometheus metrics", {"200": text}, secured=False)
    spec.add(
        "get",
        "/openapi.json",
        "This document",
        {"200": json_response(bodies.OPENAPI_DOC)},
        secured=False,
    )
