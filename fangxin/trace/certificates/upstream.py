"""Tracing a lot upstream through its 合格证, tolerating a database without certificate tables."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import MetaData, Table, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

_LOGGER = logging.getLogger(__name__)
# Columns worth reporting when the certificate register has them.
_FIELDS = ("number", "subject_id", "subject_name", "contact", "product", "origin", "status")


def lookup_certificate(session: Session, number: str) -> dict[str, Any] | None:
    """Return what the certificate register knows of a number (or public code), or None.

    The register belongs to another area and may be absent or shaped differently: the table is
    reflected, not imported, and any mismatch means "not found" rather than an error.
    """
    connection = session.connection()
    try:
        # A savepoint: a failed query must not abort the caller's transaction (PostgreSQL).
        with session.begin_nested():
            if not inspect(connection).has_table("certificates"):
                return None
            table = Table("certificates", MetaData(), autoload_with=connection)
            columns = table.c
            if "number" not in columns:
                return None
            match = columns.number == number
            if "code" in columns:
                match = or_(match, columns.code == number)
            wanted = [columns[name] for name in _FIELDS if name in columns]
            row = session.execute(select(*wanted).where(match).limit(1)).mappings().first()
    except SQLAlchemyError as exc:
        _LOGGER.warning("Certificate lookup of %s failed: %s", number, exc)
        return None
    return dict(row) if row is not None else None


def issuer_of(found: dict[str, Any] | None) -> str | None:
    """Return a one-line description of who issued a certificate."""
    if not found:
        return None
    name = found.get("subject_name") or found.get("subject_id")
    if not name:
        return None
    contact = found.get("contact")
    return f"{name}（{contact}）" if contact else str(name)
