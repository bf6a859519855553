"""Rate limits on the public pages, /login and the results door (Flask-Limiter)."""

from __future__ import annotations

import math
import time
from ipaddress import ip_address
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from fangxin.config import Settings
from fangxin.service.auth import bearer_principal
from fangxin.service.problems import problem_response

# Endpoints limited per client address with FANGXIN_RATELIMIT_PUBLIC.
PUBLIC_ENDPOINTS = (
    "certificates_pages.scan",
    "certificates_pages.digital_link",
    "results_api.board",
)
# Only POST /login is counted: the form itself is harmless, password guessing is not.
LOGIN_ENDPOINT = "dash.login"
RESULTS_ENDPOINT = "results_api.post_results"


def client_address(trusted_proxies: tuple[str, ...]) -> str:
    """Return the caller's address, believing X-Forwarded-For only from configured proxies."""
    remote = request.remote_addr or "unknown"
    if remote not in trusted_proxies:
        return remote
    # The right-most address a trusted proxy did not add is the client as our edge saw it.
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            try:
                return str(ip_address(hop))
            except ValueError:
                return remote
    return remote


def _api_key_or_address(trusted_proxies: tuple[str, ...]) -> str:
    # Only a key that authenticates has its own budget (§7): a made-up or guessed key, even
    # with a real lab's prefix, spends its sender's address budget, never the lab's.
    principal = bearer_principal()
    if principal is not None:
        return f"key:{principal.key_id}"
    return "addr:" + client_address(trusted_proxies)


def _login_account() -> str:
    # The account tried, whatever the address: many addresses cannot share out the guesses.
    return "account:" + request.form.get("username", "").strip().lower()[:64]


def _failed_login(response: Response) -> bool:
    return response.status_code == 401


def _too_many(exc: RateLimitExceeded) -> Response:
    response = problem_response(429, "Too Many Requests", f"rate limit exceeded: {exc.limit}")
    limiter: Limiter = response_limiter()
    # The limiter's own wall clock, not AppState.clock: it measures intervals, judges no rule.
    reset = limiter.current_limit.reset_at if limiter.current_limit else time.time() + 1
    response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response


def response_limiter() -> Limiter:
    """Return the running app's limiter."""
    limiter: Limiter = current_app.extensions["fangxin_limiter"]
    return limiter


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Attach a limiter and wrap the public, login and results endpoints with their limits."""
    proxies = settings.trusted_proxies
    limiter = Limiter(
        key_func=lambda: client_address(proxies),
        app=app,
        storage_uri=settings.ratelimit_storage_url,
        enabled=settings.ratelimit_enabled,
        headers_enabled=True,
        default_limits=[],
    )
    app.extensions["fangxin_limiter"] = limiter
    views: dict[str, Any] = app.view_functions
    for endpoint in PUBLIC_ENDPOINTS:
        views[endpoint] = limiter.limit(settings.ratelimit_public)(views[endpoint])
    login = limiter.limit(settings.ratelimit_public, methods=["POST"])
    per_account = limiter.limit(
        settings.ratelimit_login_account,
        key_func=_login_account,
        methods=["POST"],
        deduct_when=_failed_login,
    )
    views[LOGIN_ENDPOINT] = per_account(login(views[LOGIN_ENDPOINT]))
    results = limiter.limit(
        settings.ratelimit_results, key_func=lambda: _api_key_or_address(proxies)
    )
    views[RESULTS_ENDPOINT] = results(views[RESULTS_ENDPOINT])
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter
