"""API keys: creation, lookup by bearer token, and role checks on endpoints."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fangxin.db import utcnow
from fangxin.service.context import db_session
from fangxin.service.models import ROLES, ApiKey
from fangxin.service.problems import Problem
from fangxin.trace.certificates.models import Subject

P = ParamSpec("P")
R = TypeVar("R")
KEY_PREFIX = "fx_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and within what scope."""

    key_id: int
    role: str
    site_id: str | None
    district: str | None
    subject_id: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    role: str,
    *,
    site_id: str | None = None,
    district: str | None = None,
    subject_id: str | None = None,
    name: str | None = None,
) -> str:
    """Create an API key and return it; only its hash is stored, so it is shown once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "lab" and not site_id:
        raise ValueError("a lab key must be scoped to a site")
    if role == "issuer" and not subject_id:
        raise ValueError("an issuer key must be scoped to a subject")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 256 bits
    session.add(
        ApiKey(
            prefix=prefix,
            key_hash=_digest(secret),
            role=role,
            site_id=site_id,
            district=district,
            subject_id=subject_id,
            name=name,
        )
    )
    session.flush()
    return f"{KEY_PREFIX}{prefix}_{secret}"


# Built once: every authenticated request runs it, and building it cost a fifth of the look-up.
_KEY_BY_PREFIX = (
    select(ApiKey, Subject)
    .outerjoin(Subject, Subject.id == ApiKey.subject_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


def _bearer_key(session: Session, token: str) -> tuple[ApiKey, Subject | None] | None:
    """Return a live key's row and, for an issuer key, its subject (one query); None if refused."""
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None
    prefix, _, secret = token[len(KEY_PREFIX) :].partition("_")
    found = session.execute(_KEY_BY_PREFIX, {"prefix": prefix}).first()
    if found is None:
        return None
    key, subject = found
    if key.revoked_at is not None or not hmac.compare_digest(key.key_hash, _digest(secret)):
        return None
    return key, subject


def _principal(key: ApiKey) -> Principal:
    return Principal(key.id, key.role, key.site_id, key.district, key.subject_id)


def authenticate(session: Session, token: str) -> Principal | None:
    """Return the principal of a bearer token, or None when it is unknown or revoked."""
    found = _bearer_key(session, token)
    return _principal(found[0]) if found is not None else None


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke a key by its prefix; return whether one was found."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        return False
    key.revoked_at = utcnow()
    return True


def current_principal() -> Principal:
    """Return the caller authenticated for this request (requires_role has run)."""
    principal: Principal = g.principal
    return principal


def in_scope(scope: str | None, district: str | None) -> bool:
    """Tell whether a caller scoped to `scope` may see `district` (no scope: the whole city).

    The one district rule: API keys (`check_district`) and dashboard viewers both use it.
    """
    return not scope or district == scope


def check_district(
    principal: Principal, district: str | None, refusal: Problem | None = None
) -> None:
    """Raise `refusal` (default: 403 "this key is scoped to …") unless the key sees the district."""
    if not in_scope(principal.district, district):
        raise refusal or Problem(403, "Forbidden", f"this key is scoped to {principal.district}")


def check_site(
    principal: Principal,
    site_id: str,
    district: str | None,
    *,
    lab_refusal: Problem | None = None,
    district_refusal: Problem | None = None,
) -> None:
    """Refuse a lab key of another site, or a district regulator of another district.

    `district` is the site's; None for an unknown site, which the caller answers itself (404).
    """
    if principal.role == "lab" and principal.site_id != site_id:
        raise lab_refusal or Problem(
            403, "Forbidden", f"this API key is scoped to site {principal.site_id}"
        )
    if principal.role == "regulator" and district is not None:
        check_district(
            principal,
            district,
            district_refusal
            or Problem(403, "Forbidden", f"this API key is scoped to {principal.district}"),
        )


def own_district(principal: Principal, asked: str | None = None) -> str | None:
    """Return the district a listing covers: a district key's own whatever was asked, else asked."""
    return principal.district or asked


def scoped_district(asked: str | None) -> str | None:
    """Return the district a query may see: the key's own district (403 if another was asked)."""
    principal = current_principal()
    if asked is not None:
        check_district(principal, asked)
    return own_district(principal, asked)


def bearer_principal() -> Principal | None:
    """Authenticate this request's bearer key once; the rate limiter and the role check share it."""
    if "bearer" not in g:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = None
        if scheme.lower() == "bearer" and token.strip():
            found = _bearer_key(db_session(), token.strip())
        g.bearer = _principal(found[0]) if found is not None else None
        # The key is read on every request; an issuer's subject read with it is held for the
        # request, so get_subject finds it in the session (whose identity map holds objects
        # weakly) instead of asking the database again.
        g.bearer_subject = found[1] if found is not None else None
    principal: Principal | None = g.bearer
    return principal


def requires_role(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Allow the endpoint to callers with one of these roles (admin always)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Problem(401, "Unauthorized", "send an API key as Authorization: Bearer <key>")
            principal = bearer_principal()
            if principal is None:
                raise Problem(401, "Unauthorized", "unknown or revoked API key")
            if principal.role != "admin" and principal.role not in roles:
                raise Problem(403, "Forbidden", f"role {principal.role} may not do this")
            g.principal = principal
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorator
