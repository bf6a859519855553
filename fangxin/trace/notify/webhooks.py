"""Outgoing webhooks: an outbox written with the event, sent signed, retried with backoff.

Each delivery is signed with HMAC-SHA256 over "<timestamp>.<body>" with the endpoint's secret:
    X-Fangxin-Signature: sha256=<hex>     X-Fangxin-Timestamp: <unix seconds>
    X-Fangxin-Event: <event>              X-Fangxin-Delivery: <delivery id>
A receiver recomputes the HMAC, compares in constant time and may refuse old timestamps.
Sending and retrying (Dispatcher, BackgroundSender) live in dispatch.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fangxin.db import utcnow
from fangxin.trace.notify.models import WebhookDelivery, WebhookEndpoint

_LOGGER = logging.getLogger(__name__)
USER_AGENT = "fangxin-webhooks/1"
# Counted on the session so the web door knows to send what its transaction enqueued.
ENQUEUED_KEY = "fangxin_webhooks_enqueued"


def new_secret() -> str:
    """Return a fresh endpoint secret (256 bits)."""
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value of a body sent at timestamp."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a signature as a receiver would (constant-time comparison)."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


def add_endpoint(
    session: Session,
    url: str,
    *,
    name: str | None = None,
    district: str | None = None,
    events: list[str] | None = None,
    secret: str | None = None,
) -> WebhookEndpoint:
    """Register a receiver; its secret is returned on the object (show it once)."""
    endpoint = WebhookEndpoint(
        url=url,
        name=name,
        district=district,
        events=events or [],
        secret=secret or new_secret(),
        active=True,
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def enqueue(
    session: Session,
    event: str,
    key: str,
    payload: Mapping[str, Any],
    district: str | None,
    now: dt.datetime,
) -> int:
    """Write one delivery per matching endpoint in the caller's transaction; return how many."""
    body = json.dumps(
        {"event": event, "id": key, "occurred_at": now.isoformat(), "data": payload},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.active.is_(True),
            or_(WebhookEndpoint.district.is_(None), WebhookEndpoint.district == district),
        )
    ).all()
    count = 0
    for endpoint in endpoints:
        if endpoint.events and event not in endpoint.events:
            continue
        exists = session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_key == key
            )
        )
        if exists is not None:
            continue
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event=event,
                event_key=key,
                body=body,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        count += 1
    session.flush()
    session.info[ENQUEUED_KEY] = session.info.get(ENQUEUED_KEY, 0) + count
    return count
