"""Webhook receivers of regulators' systems and their delivery log."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from fangxin.service import bodies
from fangxin.service.api.results import refuse_nul
from fangxin.service.api.sites import listing, parse_body
from fangxin.service.auth import requires_role
from fangxin.service.context import db_session
from fangxin.service.openapi import Spec, json_response, query_param
from fangxin.service.paging import PAGE_PARAMS, page_args, paged
from fangxin.trace.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fangxin.trace.notify.webhooks import add_endpoint
from fangxin.trace.results.schemas import EndpointIn

bp = Blueprint("webhooks_api", __name__, url_prefix="/api/v1")
bp.before_request(refuse_nul)


@bp.post("/webhooks")
@requires_role("admin")
def add_webhook() -> tuple[Response, int]:
    """Register a receiver of case events; the answer carries its signing secret, once."""
    data = parse_body(EndpointIn)
    session = db_session()
    endpoint = add_endpoint(session, **data.model_dump())
    session.commit()
    return jsonify(id=endpoint.id, url=endpoint.url, secret=endpoint.secret), 201


@bp.get("/webhooks/deliveries")
@requires_role("admin")
def list_deliveries() -> Response:
    """List the delivery log: each delivery with its attempts."""
    session, page = db_session(), page_args()
    stmt = (
        select(WebhookDelivery)
        .order_by(WebhookDelivery.id.desc())
        .offset(page.offset)
        .limit(page.fetch)
    )
    if request.args.get("status"):
        stmt = stmt.where(WebhookDelivery.status == request.args["status"])
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
    return paged(out, page)


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    spec.add(
        "post",
        "/api/v1/webhooks",
        "Register a webhook receiver",
        {"201": json_response(bodies.WEBHOOK_CREATED)},
        body=EndpointIn,
    )
    spec.add(
        "get",
        "/api/v1/webhooks/deliveries",
        "Webhook delivery log",
        {"200": listing(bodies.DELIVERY)},
        params=[query_param("status"), *PAGE_PARAMS],
    )
