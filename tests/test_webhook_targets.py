"""Webhooks: a redirect is a failure (never followed), private and loopback targets refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.trace.notify.dispatch import Backoff, Dispatcher
from fangxin.trace.notify.models import WebhookAttempt, WebhookDelivery
from fangxin.trace.notify.webhooks import add_endpoint
from tests.helpers import result
from tests.results_helpers import (  # noqa: F401 - fixtures
    mqtt,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


@pytest.fixture
def servers() -> Iterator[tuple[str, list[str], list[str]]]:
    """A receiver that redirects to a second server; each records the methods it got."""
    hits: list[str] = []
    elsewhere: list[str] = []

    class Other(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            elsewhere.append(f"GET {self.headers.get('X-Fangxin-Signature')}")
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *_args: Any) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Other)

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append("POST")
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/steal")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in (first, other)
    ]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{first.server_address[1]}/hook", hits, elsewhere
    for server in (first, other):
        server.shutdown()
        server.server_close()


def confirmed_case(sessions: sessionmaker[Session], url: str) -> None:
    setup_market(sessions)
    with sessions.begin() as session:
        add_endpoint(session, url, district=None)
    mqtt(sessions, result("r-1", 80.0), result("r-2", 75.0, retest_of="r-1"))
    mqtt(sessions, result("r-3", 77.0, retest_of="r-1"))


def attempts(sessions: sessionmaker[Session]) -> list[tuple[bool, int | None, str | None]]:
    with sessions() as session:
        rows = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert session.scalars(select(WebhookDelivery)).one().status == "pending"
        return [(a.ok, a.status_code, a.error) for a in rows]


def test_a_redirect_is_a_failed_delivery(
    sessions: sessionmaker[Session], servers: tuple[str, list[str], list[str]]
) -> None:
    url, hits, elsewhere = servers
    confirmed_case(sessions, url)
    dispatcher = Dispatcher(sessions, Backoff(base_s=30), timeout_s=5, allow_private=True)
    assert dispatcher.deliver_due(utcnow()) == 0
    assert hits == ["POST"]
    assert elsewhere == []  # neither the body nor the signature went to the other host
    ((ok, code, error),) = attempts(sessions)
    assert (ok, code) == (False, 302)
    assert error is not None
    assert "redirects are not followed" in error


def test_private_and_loopback_targets_are_refused_by_default(
    sessions: sessionmaker[Session], servers: tuple[str, list[str], list[str]]
) -> None:
    url, hits, _ = servers
    confirmed_case(sessions, url)
    assert Dispatcher(sessions, Backoff(base_s=30), timeout_s=5).deliver_due(utcnow()) == 0
    assert hits == []  # nothing was sent
    ((ok, code, error),) = attempts(sessions)
    assert (ok, code) == (False, None)
    assert error is not None
    assert "private or loopback" in error


class Rebinding:
    """A resolver that answers a public address once, then a private one (DNS rebinding)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return [self.answers[min(len(self.asked), len(self.answers)) - 1]]


def test_a_rebinding_answer_cannot_reach_a_private_host(
    sessions: sessionmaker[Session], servers: tuple[str, list[str], list[str]]
) -> None:
    url, hits, _ = servers
    port = int(url.split(":")[2].split("/")[0])
    confirmed_case(sessions, f"http://hooks.example:{port}/hook")
    resolver = Rebinding("93.184.216.34", "127.0.0.1")
    dispatcher = Dispatcher(sessions, Backoff(base_s=30), timeout_s=1, resolve=resolver)
    assert dispatcher.deliver_due(utcnow()) == 0
    assert resolver.asked == [("hooks.example", port)]  # resolved once, checked, connected
    assert hits == []  # the loopback receiver the second answer names got nothing
    ((ok, code, error),) = attempts(sessions)
    assert (ok, code) == (False, None)
    assert error is not None
    assert "93.184.216.34" in error  # it tried the checked address, and only that


def test_a_private_first_answer_is_refused_before_connecting(
    sessions: sessionmaker[Session], servers: tuple[str, list[str], list[str]]
) -> None:
    url, hits, _ = servers
    port = int(url.split(":")[2].split("/")[0])
    confirmed_case(sessions, f"http://hooks.example:{port}/hook")
    resolver = Rebinding("10.1.2.3")
    assert Dispatcher(sessions, Backoff(base_s=30), resolve=resolver).deliver_due(utcnow()) == 0
    assert hits == []
    ((_, _, error),) = attempts(sessions)
    assert error is not None
    assert "10.1.2.3, a private or loopback address" in error


def test_the_connection_goes_to_the_checked_address_under_the_name(
    sessions: sessionmaker[Session],
) -> None:
    seen: list[str | None] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers.get("Host"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        confirmed_case(sessions, f"http://hooks.example:{port}/hook?x=1")
        resolver = Rebinding("127.0.0.1")
        dispatcher = Dispatcher(
            sessions, Backoff(), timeout_s=5, allow_private=True, resolve=resolver
        )
        assert dispatcher.deliver_due(utcnow()) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [f"hooks.example:{port}"]  # the Host header keeps the name
