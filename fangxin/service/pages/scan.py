"""Public doors of 合格证: the consumer scan page, the Digital Link resolver, the signing keys."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import select

from fangxin.config import ConfigError
from fangxin.devices.models import Site
from fangxin.service import bodies
from fangxin.service.caches import PageCache
from fangxin.service.context import db_session, read_session, state
from fangxin.service.openapi import Spec, json_response, path_param
from fangxin.service.pages.dashboard import signed_in_user
from fangxin.service.problems import Problem
from fangxin.service.ratelimit import client_address
from fangxin.trace.certificates import entry_rules
from fangxin.trace.certificates.digital_link import DigitalLinkError, build, parse
from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.scan_view import scan_page
from fangxin.trace.certificates.scans import scan_stats, visitor_id
from fangxin.trace.certificates.signing import ensure_registered, keys_document
from fangxin.trace.certificates.views import public_base

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("certificates_pages", __name__)
CODE = re.compile(r"^[A-Za-z2-7]{16}$")
CSS = Path(__file__).parent.parent / "static" / "scan.css"
KINDS = {"producer": "生产者", "purchaser": "收购者"}
STATUSES = {"valid": "有效", "voided": "已作废"}
T = TypeVar("T")


@cache
def _css() -> str:
    return CSS.read_text(encoding="utf-8")


@bp.app_template_filter("local_time")
def local_time(value: dt.datetime | None) -> str:
    """Format a time in the city's zone, to the second."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(state().settings.timezone)).strftime("%Y-%m-%d %H:%M:%S")


@bp.app_template_filter("qty")
def qty(value: float) -> str:
    """Format a quantity without trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _page(html: str, status: int = 200) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    # The status of a lot can change at any moment (voided, recalled): never cache the page.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _not_found(code: str) -> Response:
    _LOGGER.info("Scan of an unknown certificate code")
    return _page(render_template("scan_not_found.html", code=code[:40], css=_css()), 404)


def page_cache() -> PageCache:
    """Return this process's scan-page cache."""
    return state().scan_pages


def clear_pages() -> None:
    """Forget every cached scan page (a status changed)."""
    state().scan_pages.clear()


def flush_scans(force: bool = False) -> bool:
    """Write the buffered scans when due (or now); whether it wrote."""
    buffer = state().scan_buffer
    if not (force or buffer.due()):
        return False
    return buffer.flush()


def _count_scan(cert_id: int, cache: PageCache) -> bool:
    """Count this scan; whether the buffer was written (this scan included)."""
    settings, now = state().settings, state().clock()
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    user = signed_in_user()
    site_id = None
    if user is not None:  # only an account's scan is evidence, and may name its market (§5)
        site_id = request.args.get("m")
        if site_id is not None and not cache.site_known(site_id, _site_exists):
            site_id = None
        client = f"user:{user.id}"
    else:
        # Only a keyed hash of the day and the client is kept: no IP address, no user agent.
        client = f"{client_address(settings.trusted_proxies)}|{request.user_agent}"
    visitor = visitor_id(str(current_app.secret_key), day, client)
    buffer = state().scan_buffer
    buffer.add(cert_id, day, visitor, site_id, now, user is not None)
    if buffer.flush_s > 0:
        # Written by the process's writer thread, never on a visitor's request (issue 17).
        buffer.start()
        return False
    return flush_scans()


def _site_exists(site_id: str) -> bool:
    return db_session().get(Site, site_id) is not None


@bp.get("/c/<code>")
def scan(code: str) -> Response:
    """Consumer scan page: banner first, then what the certificate says and where the lot went."""
    if not CODE.match(code):
        return _not_found(code)
    code = code.upper()
    cache = page_cache()
    cache.follow()  # drops the pages changed since its last read: a query once a ttl at most
    hit = cache.get(code)
    if hit is not None:
        _count_scan(hit[0], cache)
        return _page(hit[1])
    generation = cache.generation
    settings = state().settings
    page = scan_page(state().reader, read_session, code, settings, state().clock())
    if page is None:
        return _not_found(code)
    if _count_scan(page.row.id, cache):
        # This scan was just written: show the counts with it, as a later reader would see them.
        page = replace(page, stats=scan_stats(db_session(), page.row))
    html = render_template(
        "scan.html",
        page=page,
        css=_css(),
        kinds=KINDS,
        statuses=STATUSES,
        base=public_base(settings),
        entry_rule=entry_rules.rule("certificate"),
    )
    cache.put(code, page.row.id, html, page.covered, generation)
    return _page(html)


def _raw_uri() -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        query = request.query_string.decode("latin-1")
        raw = request.environ.get("PATH_INFO", request.path) + (f"?{query}" if query else "")
    return f"{request.scheme}://{request.host}{raw}"


@bp.get("/01/<path:rest>")
def digital_link(rest: str) -> Response:
    """GS1 Digital Link resolver for lots with a GTIN: redirect to the lot's scan page."""
    try:
        link = parse(_raw_uri())
    except DigitalLinkError as exc:
        raise Problem(400, "Invalid GS1 Digital Link", str(exc)) from exc
    cert = None
    if link.lot is not None:
        cert = db_session().scalar(
            select(Certificate).where(Certificate.gtin == link.gtin, Certificate.lot == link.lot)
        )
    if cert is None:
        raise Problem(404, "Not Found", "no certificate for this GTIN and lot")
    target = f"/c/{cert.code}"
    link_type = request.args.get("linkType")
    if link_type in ("linkset", "all") or "application/linkset+json" in request.headers.get(
        "Accept", ""
    ):
        base = public_base(state().settings)
        anchor = build(base, cert.gtin or "", cert.lot)
        links = {
            "anchor": anchor,
            "https://gs1.org/voc/pip": [{"href": f"{base}{target}", "title": "承诺达标合格证"}],
            "https://gs1.org/voc/defaultLink": [{"href": f"{base}{target}", "title": "合格证"}],
        }
        return Response(
            json.dumps({"linkset": [links]}, ensure_ascii=False),
            mimetype="application/linkset+json",
        )
    if link_type not in (None, "gs1:pip", "gs1:defaultLink", "pip", "defaultLink"):
        raise Problem(404, "Not Found", f"no {link_type} link for this lot")
    query = request.query_string.decode("latin-1")
    response = Response(status=307, headers={"Location": target + (f"?{query}" if query else "")})
    response.headers["Link"] = f'<{_raw_uri().split("?", 1)[0]}>; rel="owl:sameAs"'
    return response


@bp.get("/.well-known/fangxin-keys.json")
def signing_keys() -> Response:
    """Public keys that verify certificate signatures, old ones included."""
    session = db_session()
    try:
        ensure_registered(session, state().signer)
        session.commit()
    except ConfigError as exc:  # the keys already published still verify
        _LOGGER.error("Signing key unusable: %s", exc)
        session.rollback()
    body = json.dumps(keys_document(session), ensure_ascii=False)
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    html = {"description": "HTML page", "content": {"text/html": {}}}
    spec.add(
        "get",
        "/c/{code}",
        "Consumer scan page (zh-CN)",
        {"200": html, "404": html},
        secured=False,
        params=[path_param("code")],
    )
    spec.add(
        "get",
        "/01/{gtin}/10/{lot}",
        "GS1 Digital Link: redirect to the lot's scan page",
        {"307": {"description": "Redirect to /c/{code}"}},
        secured=False,
        params=[path_param("gtin"), path_param("lot")],
    )
    spec.add(
        "get",
        "/.well-known/fangxin-keys.json",
        "Ed25519 public keys (JWK set) that verify certificates",
        {"200": json_response(bodies.JWKS, "JWK set")},
        secured=False,
    )
