"""承诺主体: registering producers and purchasers."""

from __future__ import annotations

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
