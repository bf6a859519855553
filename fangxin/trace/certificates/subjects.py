"""承诺主体: registering producers and purchasers."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fangxin.db import utcnow
from fangxin.trace.certificates.models import Subject
from fangxin.trace.certificates.schemas import SubjectIn


class SubjectError(ValueError):
    """A subject that conflicts with what is registered."""


class SubjectNotFound(LookupError):
    """No such subject."""


def add_subject(session: Session, data: SubjectIn) -> Subject:
    """Register a subject; its id must be new."""
    if session.get(Subject, data.id) is not None:
        raise SubjectError(f"subject {data.id} is already registered")
    subject = Subject(**data.model_dump(), created_at=utcnow())
    session.add(subject)
    session.flush()
    return subject


def get_subject(session: Session, subject_id: str) -> Subject:
    """Return a subject or raise SubjectNotFound."""
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound(f"subject {subject_id} is not registered")
    return subject


def list_subjects(
    session: Session,
    *,
    search: str | None = None,
    district: str | None = None,
    subject_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Subject]:
    """Return subjects by id, matching a name or credit-code fragment, of a district if given."""
    stmt = select(Subject).order_by(Subject.id)
    if search:
        stmt = stmt.where(
            or_(
                Subject.name.contains(search, autoescape=True),
                Subject.credit_code.contains(search.upper(), autoescape=True),
            )
        )
    if district is not None:
        stmt = stmt.where(Subject.district == district)
    if subject_id is not None:
        stmt = stmt.where(Subject.id == subject_id)
    return list(session.scalars(stmt.offset(offset).limit(limit)))
