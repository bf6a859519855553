"""Every response carries the hardening headers and a request id."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_headers_on_api_page_and_error(client: FlaskClient) -> None:
    for path in ("/healthz", "/api/v1/nowhere", "/openapi.json"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert len(response.headers["X-Request-ID"]) == 16
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_hsts_behind_tls_proxy_and_request_id_passthrough(client: FlaskClient) -> None:
    response = client.get(
        "/healthz", headers={"X-Forwarded-Proto": "https", "X-Request-ID": "abc-123"}
    )
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Request-ID"] == "abc-123"
    bogus = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert bogus.headers["X-Request-ID"] != "<script>"


def test_json_logs(caplog: object) -> None:
    import json
    import logging

    from fangxin.service.security import JsonFormatter

    record = logging.LogRecord("fangxin.x", logging.INFO, __file__, 1, "hello %s", ("世界",), None)
    record.request_id = "r1"
    body = json.loads(JsonFormatter().format(record))
    assert body["message"] == "hello 世界"
    assert body["request_id"] == "r1"
    assert body["level"] == "INFO"
