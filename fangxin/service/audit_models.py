"""The append-only audit log of writes made through the HTTP API and the dashboard."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow


class AuditEntry(Base):
    """One write request: who, what, when and from where (never updated or deleted)."""

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
