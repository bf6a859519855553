"""Tables of the HTTP door: API keys, dashboard accounts and the append-only audit log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

ROLES = ("admin", "regulator", "lab", "issuer")


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the prefix finds it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class User(Base):
    """A person who signs in to the dashboard; a district scopes what a regulator sees."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]
    # In every session cookie; bumped on logout and password change, which kills older cookies.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")


class AuditEntry(Base):
    """One write request: who, what, when and from where (never deleted; see AUDIT_UPDATES)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    key_id: Mapped[int | None]
    # The key's public prefix as sent, so refused attempts with unknown keys are traceable too.
    key_prefix: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    endpoint: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[int]
    object_id: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Refusals without identity (401, 429) of one address are one row per minute, counted here.
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
