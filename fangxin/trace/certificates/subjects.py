"""承诺主体: registering producers and purchasers; the unified social credit code check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from fangxin.db import utcnow
from fangxin.trace.certificates.models import Subject

if TYPE_CHECKING:  # only a type here: schemas imports this module (check_credit_code)
    from fangxin.trace.certificates.schemas import SubjectIn

# GB 32100-2015: 统一社会信用代码 alphabet (no I, O, S, V, Z) and position weights.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class SubjectError(ValueError):
    """A subject that conflicts with what is registered."""


class SubjectNotFound(LookupError):
    """No such subject."""


def credit_check_char(body: str) -> str:
    """Return the check character of the first 17 characters of a credit code."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(text: str) -> str:
    """Return the code upper-cased, or raise ValueError when it is not a valid credit code."""
    code = text.strip().upper()
    if len(code) != 18 or any(c not in CREDIT_ALPHABET for c in code):
        raise ValueError("a unified social credit code has 18 characters of GB 32100")
    if credit_check_char(code[:17]) != code[17]:
        raise ValueError("the unified social credit code's check character is wrong")
    return code


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
