"""Dashboard accounts: creation and password checks (werkzeug's salted scrypt hashes)."""

from __future__ import annotations

import threading
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from fangxin.service.models import User

DASHBOARD_ROLES = ("admin", "regulator")
MIN_PASSWORD = 10
# One scrypt hash at a time per process: each takes 32 MB (n=2^15, r=8) outside the GIL, so a
# burst of logins on a worker's four threads took 128 MB at once. A hash is CPU-bound: on the
# two cores two workers already use, queueing them costs no throughput.
_HASHING = threading.Lock()


def _hash(password: str) -> str:
    with _HASHING:
        return generate_password_hash(password)


def _matches(pwhash: str, password: str) -> bool:
    with _HASHING:
        return check_password_hash(pwhash, password)


@cache
def _dummy_hash() -> str:
    """Return the hash checked when the username is unknown: both paths cost one hash."""
    # Made on first use, not at import: every process importing this module paid a hash.
    return _hash("not-a-real-password")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")


def add_user(
    session: Session, username: str, password: str, role: str, district: str | None = None
) -> User:
    """Create an account; a regulator without a district sees the whole city."""
    if role not in DASHBOARD_ROLES:
        raise ValueError(f"role must be one of {', '.join(DASHBOARD_ROLES)}")
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username} exists")
    user = User(
        username=username,
        password_hash=_hash(password),
        role=role,
        district=district or None,
    )
    session.add(user)
    session.flush()
    return user


def check_login(session: Session, username: str, password: str) -> User | None:
    """Return the active account of these credentials, or None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.disabled_at is not None:
        _matches(_dummy_hash(), password)
        return None
    return user if _matches(user.password_hash, password) else None


def set_password(session: Session, username: str, password: str) -> User:
    """Change an account's password and sign out every session it has."""
    _check_password(password)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"user {username} does not exist")
    user.password_hash = _hash(password)
    end_sessions(user)
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session cookie issued to the account so far."""
    user.session_version = (user.session_version or 0) + 1
