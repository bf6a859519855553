"""Tables of outgoing webhooks: receivers, deliveries (an outbox) and the log of attempts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base


class WebhookEndpoint(Base):
    """A receiver of events (a regulator's system), optionally only for one district."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    # HMAC-SHA256 key; kept in clear because signing needs it.
    secret: Mapped[str] = mapped_column(String(128))
    district: Mapped[str | None] = mapped_column(String(64))
    # Event names it wants (empty: all).
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]


class WebhookDelivery(Base):
    """One event for one endpoint, written in the transaction that caused it, sent later."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_key"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event: Mapped[str] = mapped_column(String(64))
    # What makes the event unique (a retried transaction must not enqueue it twice).
    event_key: Mapped[str] = mapped_column(String(100))
    # The exact body sent on every attempt.
    body: Mapped[str] = mapped_column(Text)
    # pending, delivered or failed (gave up after the last attempt).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    # A sender holds the delivery until then, so two senders never post it at once.
    lease_until: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(Base):
    """One try at a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    at: Mapped[dt.datetime]
    attempt: Mapped[int]
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]
