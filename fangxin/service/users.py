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


def set_password(session: Session, username: str, password: str) -> User:
    """Change an account's password and sign out every session it has."""
    _check_password(password)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"user {username} does not exist")
    user.password_hash = generate_password_hash(password)
    end_sessions(user)
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session cookie issued to the account so far."""
    user.session_version = (user.session_version or 0) + 1
