"""Dashboard accounts: creation and password checks (werkzeug's salted scrypt hashes)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from fangxin.service.models import User

DASHBOARD_ROLES = ("admin", "regulator")
MIN_PASSWORD = 10
# Checked against when the username is unknown, so both paths cost one hash.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def add_user(
    session: Session, username: str, password: str, role: str, district: str | None = None
) -> User:
    """Create an account; a regulator without a district sees the whole city."""
    if role not in DASHBOARD_ROLES:
        raise ValueError(f"role must be one of {', '.join(DASHBOARD_ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username} exists")
    user = User(
        username=username,
        password_hash=generate_password_hash(password),
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
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None
