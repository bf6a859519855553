"""Printable 合格证 labels (PNG at printer dots, SVG, PDF, HTML print page) and QR symbols."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from fangxin.service.api.certificates import certificate_in_scope, register_errors
from fangxin.service.auth import requires_role
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, path_param, query_param
from fangxin.service.problems import Problem
from fangxin.trace.certificates import label_render, labels, qr, recalls, template_versions
from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.views import scan_url

bp = Blueprint("certificates_labels", __name__, url_prefix="/api/v1")
register_errors(bp)


def _layout(cert: Certificate) -> labels.Layout:
    if cert.status != "valid" or recalls.recalls_affecting(db_session(), cert):
        raise Problem(409, "Conflict", f"{cert.number} is {cert.status} or recalled: not printed")
    settings = state().settings
    data = labels.label_data(cert, scan_url(settings, cert), settings.timezone)
    dpi = request.args.get("dpi", "203")
    if not dpi.isdigit():
        raise Problem(422, "Cannot print", "dpi must be a number")
    try:
        return labels.layout(data, request.args.get("size"), int(dpi))
    except labels.LabelTooSmall as exc:
        errors = [
            {"field": labels.REQUIRED_FIELDS.get(f, "commitment"), "label": f, "message": str(exc)}
            for f in exc.fields
        ]
        raise Problem(
            422, "Label too small", str(exc), errors=errors, larger_size=exc.larger
        ) from exc


@bp.get("/certificates/<number>/label.<fmt>")
@requires_role("regulator", "issuer")
def label(number: str, fmt: str) -> Response:
    """Printable label (60x40, 70x50 or 100x70 mm, else the smallest that holds every field)."""
    cert = certificate_in_scope(number)
    out = _layout(cert)
    name = f"{cert.number}-{out.size}"
    if fmt == "png":
        body, mimetype = label_render.render_png(out), "image/png"
    elif fmt == "svg":
        body, mimetype = label_render.render_svg(out).encode(), "image/svg+xml"
    elif fmt == "pdf":
        body, mimetype = label_render.render_pdf(out, cert.number), "application/pdf"
    elif fmt == "html":
        svg = label_render.render_svg(out)
        source = template_versions.versions()["2026"]["source"]  # the six required fields
        page = render_template("label_print.html", cert=cert, out=out, svg=svg, source=source)
        return Response(page)
    else:
        raise Problem(404, "Not Found", "labels come as png, svg, pdf or html")
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="{name}.{fmt}"'
    return response


@bp.get("/certificates/<number>/qr.<fmt>")
@requires_role("regulator", "issuer")
def qr_code(number: str, fmt: str) -> Response:
    """Return the QR symbol alone: SVG in mm, or PNG at whole dots for 203/300 dpi."""
    cert = certificate_in_scope(number)
    symbol = qr.make(scan_url(state().settings, cert), labels.MAX_QR_VERSION)
    if fmt == "svg":
        return Response(qr.svg(symbol), mimetype="image/svg+xml")
    if fmt != "png":
        raise Problem(404, "Not Found", "QR codes come as png or svg")
    dpi, dots = request.args.get("dpi", "203"), request.args.get("dots")
    if not dpi.isdigit() or (dots is not None and not dots.isdigit()):
        raise Problem(422, "Cannot print", "dpi and dots must be numbers")
    body = qr.png(symbol, int(dpi), int(dots) if dots else None)
    return Response(body, mimetype="image/png")


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    num = [path_param("number")]
    for fmt, mime in (
        ("png", "image/png"),
        ("svg", "image/svg+xml"),
        ("pdf", "application/pdf"),
        ("html", "text/html"),
    ):
        spec.add(
            "get",
            f"/api/v1/certificates/{{number}}/label.{fmt}",
            f"Label as {fmt}",
            {"200": {"description": "label", "content": {mime: {}}}},
            params=[
                *num,
                query_param("size", {"enum": list(labels.SIZE_ORDER)}),
                query_param("dpi", {"enum": ["203", "300"]}),
            ],
        )
    for fmt, mime in (("png", "image/png"), ("svg", "image/svg+xml")):
        spec.add(
            "get",
            f"/api/v1/certificates/{{number}}/qr.{fmt}",
            f"QR symbol as {fmt}",
            {"200": {"description": "QR", "content": {mime: {}}}},
            params=[*num, query_param("dpi"), query_param("dots")],
        )
