"""The webhook delivery log: each delivery with its attempts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.trace.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def delivery_log(
    session: Session, status: str | None = None, *, offset: int = 0, limit: int = 200
) -> list[dict[str, Any]]:
    """Return deliveries, newest first (optionally of one status), with their attempts."""
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).offset(offset).limit(limit)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    out = []
    for d in session.scalars(stmt):
        attempts = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == d.id)
            .order_by(WebhookAttempt.id)
        )
        endpoint = session.get(WebhookEndpoint, d.endpoint_id)
        out.append(
            {
                "id": d.id,
                "endpoint": endpoint.url if endpoint else None,
                "event": d.event,
                "event_key": d.event_key,
                "status": d.status,
                "attempts": [
                    {"at": a.at.isoformat(), "ok": a.ok, "status_code": a.status_code}
                    | {"error": a.error, "duration_ms": a.duration_ms}
                    for a in attempts
                ],
                "next_attempt_at": d.next_attempt_at.isoformat(),
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            }
        )
    return out
