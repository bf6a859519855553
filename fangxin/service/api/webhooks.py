"""Webhook receivers of regulators' systems and their delivery log."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from fangxin.service import bodies
from fangxin.service.api.results import refuse_nul
from fangxin.service.auth import requires_role
from fangxin.service.context import db_session
from fangxin.service.openapi import Spec, json_response, query_param
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, paged
from fangxin.service.problems import parse_body
from fangxin.trace.notify.log import delivery_log
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
    page = page_args()
    out = delivery_log(
        db_session(), request.args.get("status"), offset=page.offset, limit=page.fetch
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
