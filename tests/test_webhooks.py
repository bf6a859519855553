"""Regulator webhooks against a real local HTTP receiver: signed, retried with backoff, logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.service.app import create_app
from fangxin.trace.notify.dispatch import Backoff, Dispatcher
from fangxin.trace.notify.models import WebhookAttempt, WebhookDelivery
from fangxin.trace.notify.webhooks import add_endpoint
from tests.helpers import result, wait_until
from tests.results_helpers import (  # noqa: F401 - fixtures
    auth,
    mqtt,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


@dataclass
class Receiver:
    """A regulator's endpoint: answers the given statuses in turn, then 200; records requests."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(statuses=[500])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/fangxin"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a request the way a receiver would, independently of our code."""
    signed = headers["X-Fangxin-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Fangxin-Signature"])


def confirm_a_case(sessions: sessionmaker[Session]) -> None:
    mqtt(sessions, result("r-1", 80.0), result("r-2", 75.0, retest_of="r-1"))
    mqtt(sessions, result("r-3", 77.0, retest_of="r-1"))


def register(sessions: sessionmaker[Session], url: str, district: str | None) -> str:
    with sessions.begin() as session:
        return add_endpoint(session, url, district=district).secret


def test_signed_retried_with_backoff_and_logged(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    setup_market(sessions)
    secret = register(sessions, receiver.url, "新华区")
    register(sessions, "http://127.0.0.1:9/elsewhere", "卫东区")  # another district's receiver
    confirm_a_case(sessions)
    dispatcher = Dispatcher(
        sessions, Backoff(base_s=30, max_attempts=5), timeout_s=5, allow_private=True
    )
    t0 = utcnow()
    assert dispatcher.deliver_due(t0) == 0  # the receiver answers 500
    assert dispatcher.deliver_due(t0 + dt.timedelta(seconds=29)) == 0  # not due yet
    assert len(receiver.requests) == 1
    assert dispatcher.deliver_due(t0 + dt.timedelta(seconds=30)) == 1
    assert dispatcher.deliver_due(t0 + dt.timedelta(hours=1)) == 0  # delivered once only
    assert len(receiver.requests) == 2
    (first_headers, first), (headers, body) = receiver.requests
    assert first == body  # the same body on every attempt
    assert signature_ok(secret, first_headers, first)
    assert signature_ok(secret, headers, body)
    assert not signature_ok("another secret", headers, body)
    assert headers["X-Fangxin-Event"] == "case.confirmed"
    assert first_headers["X-Fangxin-Delivery"] == headers["X-Fangxin-Delivery"]
    event = json.loads(body)
    assert event["event"] == "case.confirmed"
    assert event["data"]["site"]["district"] == "新华区"
    assert event["data"]["result"]["value"] == 80.0
    assert event["data"]["retests"] == 2
    with sessions() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()  # none for 卫东区
        attempts = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 200)
    assert [(a.attempt, a.ok, a.status_code) for a in attempts] == [(1, False, 500), (2, True, 200)]
    assert attempts[0].at == t0
    assert attempts[1].at == t0 + dt.timedelta(seconds=30)


def test_backoff_doubles_then_gives_up(sessions: sessionmaker[Session], receiver: Receiver) -> None:
    setup_market(sessions)
    receiver.statuses = [503] * 10
    register(sessions, receiver.url, None)
    confirm_a_case(sessions)
    dispatcher = Dispatcher(
        sessions, Backoff(base_s=10, max_attempts=4), timeout_s=5, allow_private=True
    )
    now, waits = utcnow(), []
    for _ in range(4):
        dispatcher.deliver_due(now)
        with sessions() as session:
            delivery = session.scalars(select(WebhookDelivery)).one()
        waits.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at
    assert waits[:3] == [10.0, 20.0, 40.0]
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 4, 503)
    assert len(receiver.requests) == 4
    assert dispatcher.deliver_due(now + dt.timedelta(days=1)) == 0


def test_web_process_sends_without_a_worker(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = setup_market(sessions)
    confirm_a_case(sessions)  # enqueued nothing: no receiver was registered yet
    secret = register(sessions, receiver.url, "新华区")
    client = create_app(replace(settings, webhook_backoff_s=0.05), engine).test_client()
    with sessions() as session:
        from fangxin.trace.results.followup_models import Followup

        fid = session.scalars(select(Followup.id)).one()
    try:
        response = client.post(
            f"/api/v1/followups/{fid}/actions", json={"action": "notify"}, headers=auth(keys.lab)
        )
        assert response.status_code == 200
        assert wait_until(lambda: len(receiver.requests) == 2, 10)  # 500, then 200 on retry
    finally:
        from fangxin.service.api.results import webhook_sender

        with client.application.app_context():
            webhook_sender().stop()
    headers, body = receiver.requests[-1]
    assert signature_ok(secret, headers, body)
    log = client.get("/api/v1/webhooks/deliveries", headers=auth(keys.admin)).get_json()
    assert log[0]["status"] == "delivered"
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 200]


def test_worker_command(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sessions: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    setup_market(sessions)
    receiver.statuses = []
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_WEBHOOKS_ALLOW_PRIVATE", "true")  # a loopback receiver
    added = CliRunner().invoke(main, ["webhooks", "add", receiver.url, "--district", "新华区"])
    assert added.exit_code == 0, added.output
    secret = added.output.split("secret: ")[1].split()[0]
    assert CliRunner().invoke(main, ["webhooks", "add", "ftp://x"]).exit_code == 1
    confirm_a_case(sessions)
    sent = CliRunner().invoke(main, ["webhooks", "--once"])
    assert sent.exit_code == 0, sent.output
    assert "1 delivered" in sent.output
    headers, body = receiver.requests[0]
    assert signature_ok(secret, headers, body)
