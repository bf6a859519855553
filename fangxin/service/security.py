"""Response hardening and request tracing: security headers, request ids, JSON logs."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from typing import Any

from flask import Flask, Response, g, request

from fangxin.config import ConfigError, Settings

REQUEST_ID_HEADER = "X-Request-ID"
# No inline script anywhere: every script is a file the app serves. Styles may be inline
# (print labels size their @page per label), which CSP level 3 only lets through this way.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_LOGGER = logging.getLogger("fangxin.http")
SECRET_FILE = "secret_key"


def session_secret(settings: Settings) -> str:
    """Return FANGXIN_SECRET_KEY, else this data dir's generated secret: never a constant.

    The file is created once (0600) and shared by every process of the data dir; concurrent
    first starts agree because the file appears atomically (link fails if it exists).
    """
    if settings.secret_key:
        return settings.secret_key
    if settings.production:
        raise ConfigError("production mode needs FANGXIN_SECRET_KEY")
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
            _LOGGER.warning("Generated a session secret at %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise ConfigError(f"{path} holds no usable session secret: remove it to regenerate")
    return secret


def current_request_id() -> str | None:
    """Return this request's id, if inside a request."""
    rid: str | None = g.get("request_id")
    return rid


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        body: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            body["request_id"] = rid
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def use_json_logs() -> None:
    """Switch the root logger's handlers to JSON lines."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())


def _valid_request_id(value: str | None) -> str | None:
    if value and len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return None


def init_app(app: Flask) -> None:
    """Add request ids, security headers and an access log line to every response."""

    @app.before_request
    def _start() -> None:
        g.request_id = _valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or (
            secrets.token_hex(8)
        )
        g.started = time.perf_counter()

    @app.after_request
    def _harden(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure or request.headers.get("X-Forwarded-Proto") == "https":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        rid = g.get("request_id")
        if rid:
            headers[REQUEST_ID_HEADER] = rid
        started = g.get("started")
        if started is not None:
            _LOGGER.debug(
                "%s %s %d %.1fms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                extra={"request_id": rid},
            )
        return response
