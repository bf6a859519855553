"""Rate limits, the append-only audit log, production refusal, request size and /metrics."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.config import ConfigError, Settings
from fangxin.service.app import create_app
from fangxin.service.models import AuditEntry
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count
from tests.pages_helpers import login
from tests.refusals import refused
from tests.trace_helpers import auth, key, market, post_results, result

STRONG = "k" * 40
PUBLIC_LIMITED = ("/c/nosuchcode", "/m/m-001/board", "/01/06901234567892/10/L1")


def limited_app(settings: Settings, engine: Engine, **limits: Any) -> Flask:
    """Return an app with low, test-sized limits."""
    return create_app(replace(settings, **limits), engine)


def lab_post(client: FlaskClient, secret: str, rid: str) -> int:
    """Post one result as a lab of m-001; return the status."""
    body = {**result(rid, 10.0), "site": "m-001", "device": "rt-1"}
    status: int = client.post("/api/v1/results", json=body, headers=auth(secret)).status_code
    return status


def test_public_pages_limited_with_problem_json(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    client = limited_app(settings, engine, ratelimit_public="3/minute").test_client()
    for path in PUBLIC_LIMITED:
        assert [client.get(path).status_code for _ in range(3)].count(429) == 0
        refused = client.get(path)
        assert refused.status_code == 429
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["status"] == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200  # not limited
    # Password guessing: each attempt carries the form's CSRF token, so it reaches the view.
    assert [login(client, "nobody", "guess") for _ in range(4)] == [401, 401, 401, 429]


def test_results_door_limited_per_key(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    client = limited_app(settings, engine, ratelimit_results="2/minute").test_client()
    first, second = key(sessions, "lab", site_id="m-001"), key(sessions, "lab", site_id="m-001")
    assert [lab_post(client, first, f"r{i}") for i in range(3)] == [201, 201, 429]
    assert lab_post(client, second, "r9") == 201  # another key has its own budget


def test_limits_can_be_disabled(settings: Settings, engine: Engine) -> None:
    env = {"FANGXIN_RATELIMIT_ENABLED": "false", "FANGXIN_RATELIMIT_PUBLIC": "1/minute"}
    configured = Settings.from_env(env)
    assert (configured.ratelimit_enabled, configured.ratelimit_public) == (False, "1/minute")
    client = limited_app(
        settings, engine, ratelimit_enabled=False, ratelimit_public="1/minute"
    ).test_client()
    assert {client.get("/c/nosuchcode").status_code for _ in range(3)} == {404}


def audit_rows(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    """Return the audit log, oldest first."""
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_audit_log_records_writes_and_refusals(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    proxied = replace(settings, trusted_proxies=("127.0.0.1",))
    client = create_app(proxied, engine).test_client()
    lab = key(sessions, "lab", site_id="m-001")
    assert lab_post(client, lab, "a-1") == 201
    assert client.get("/api/v1/sites/m-001/results").status_code == 200  # reads are not audited
    refused = client.post("/api/v1/sites", json={}, headers={"X-Forwarded-For": "203.0.113.7"})
    assert refused.status_code == 401
    bad = client.post("/api/v1/results", json={"site": "m-001"}, headers=auth(lab))
    assert bad.status_code == 422
    assert client.post("/api/v1/nowhere").status_code == 404  # no handler: nothing to audit
    rows = audit_rows(sessions)
    assert [(r.method, r.path, r.status) for r in rows] == [
        ("POST", "/api/v1/results", 201),
        ("POST", "/api/v1/sites", 401),
        ("POST", "/api/v1/results", 422),
    ]
    assert (rows[0].role, rows[0].key_id, rows[0].key_prefix) == ("lab", 1, lab[3:15])
    assert (rows[1].role, rows[1].client) == (None, "203.0.113.7")
    assert rows[0].client == "127.0.0.1"
    assert rows[0].request_id
    assert all(r.at is not None for r in rows)


def test_audit_log_is_append_only(
    client: FlaskClient, sessions: sessionmaker[Session], admin_key: str
) -> None:
    client.post("/api/v1/sites", json={}, headers=auth(admin_key))
    assert len(audit_rows(sessions)) == 1
    for statement in (update(AuditEntry).values(status=200), delete(AuditEntry)):
        with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
    assert [r.status for r in audit_rows(sessions)] == [422]


@pytest.mark.parametrize(
    ("secret", "signing", "refused"),
    [
        (None, STRONG, "FANGXIN_SECRET_KEY"),
        (STRONG, None, "FANGXIN_SIGNING_KEY"),
        ("dev-only-not-secret", STRONG, "FANGXIN_SECRET_KEY"),
        (STRONG, "short-key", "FANGXIN_SIGNING_KEY"),
    ],
)
def test_production_refuses_missing_or_development_secrets(
    tmp_path: Path, secret: str | None, signing: str | None, refused: str
) -> None:
    env = {
        "FANGXIN_ENV": "production",
        "FANGXIN_DATA_DIR": str(tmp_path),
        "FANGXIN_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/none",
        **({"FANGXIN_SECRET_KEY": secret} if secret else {}),
        **({"FANGXIN_SIGNING_KEY": signing} if signing else {}),
    }
    with pytest.raises(ConfigError, match=refused):
        create_app(Settings.from_env(env))
    outcome = CliRunner().invoke(main, ["serve"], env=env)
    assert outcome.exit_code != 0
    assert refused in outcome.output


def test_request_size_limit_is_problem_json(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    body = b"[" + b"0," * (4 * 1024 * 1024) + b"0]"
    response = client.post(
        "/api/v1/results", data=body, content_type="application/json", headers=auth(admin_key)
    )
    refused(response, 413, "exceeds the capacity limit")
    assert count(sessions, RapidTestResult) == 0


METRICS = {
    "fangxin_http_request_duration_seconds",
    "fangxin_ingest_results_last_minute",
    "fangxin_ingest_rate_per_second",
    "fangxin_ingest_last_received_age_seconds",
    "fangxin_ingest_lag_p50_seconds",
    "fangxin_dead_letters",
    "fangxin_dead_letters_by_source",
    "fangxin_ingesters_observing",
    "fangxin_influx_spool_depth",
}


def test_metrics_parse_and_name_every_figure(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    post_results(sessions, [result("m-1", 10.0), result("m-2", 20.0)])
    spool = sqlite3.connect(settings.data_dir / "influx-spool.db")
    spool.execute("CREATE TABLE spooled_lines (seq INTEGER PRIMARY KEY, line TEXT NOT NULL)")
    spool.executemany("INSERT INTO spooled_lines (line) VALUES (?)", [("a",), ("b",), ("c",)])
    spool.commit()
    spool.close()
    influx = replace(settings, influx_url="http://127.0.0.1:1", influx_token="t")
    client = create_app(influx, engine).test_client()
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert set(families) >= METRICS

    def value(name: str) -> float:
        return families[name].samples[0].value

    assert value("fangxin_ingest_results_last_minute") == 2
    assert value("fangxin_influx_spool_depth") == 3
    assert 0 <= value("fangxin_ingest_lag_p50_seconds") < 60
    routes = {
        s.labels.get("route") for s in families["fangxin_http_request_duration_seconds"].samples
    }
    assert "/healthz" in routes


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts/999999999999999999999999999999/read",
        "/api/v1/followups/9223372036854775808/actions",
    ],
)
def test_keys_beyond_64_bits_are_not_found_not_a_server_error(
    client: FlaskClient, admin_key: str, path: str
) -> None:
    response = client.post(path, json={"action": "notify"}, headers=auth(admin_key))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_a_key_in_range_still_reaches_its_handler(client: FlaskClient, admin_key: str) -> None:
    response = client.post("/api/v1/alerts/2147483647/read", headers=auth(admin_key))
    assert response.status_code == 404
    assert "2147483647" in response.get_json()["detail"]  # the handler's own answer
