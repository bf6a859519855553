"""Who may cite what: a subject's own and commissioned sites, and lots handed to a purchaser."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.trace.certificates.models import (
    SITE_RELATIONS,
    Certificate,
    CertificateTransfer,
    EntryCheck,
    Subject,
    SubjectSite,
)
from fangxin.trace.certificates.records import CertificateError, CertificateRefused
from fangxin.trace.results.models import RapidTestResult

# The basis a test of each relation supports (承诺依据: 自行检测合格 / 委托检测合格).
RELATION_BASIS = {"own": "self_test", "commissioned": "commissioned_test"}


class CustodyError(ValueError):
    """A site link or transfer that cannot be recorded."""


def link_site(
    session: Session, subject: Subject, site_id: str, relation: str, key_id: int | None
) -> SubjectSite:
    """Record a site as the subject's own or as a lab it commissioned; one relation per site."""
    if relation not in SITE_RELATIONS:
        raise CustodyError(f"relation must be one of {', '.join(SITE_RELATIONS)}")
    if session.get(Site, site_id) is None:
        raise CustodyError(f"site {site_id} is not registered")
    if session.get(SubjectSite, (subject.id, site_id)) is not None:
        raise CustodyError(f"site {site_id} is already linked to {subject.id}")
    row = SubjectSite(subject_id=subject.id, site_id=site_id, relation=relation, key_id=key_id)
    session.add(row)
    session.flush()
    return row


def unlink_site(session: Session, subject: Subject, site_id: str) -> None:
    """End a site link; certificates already issued on its tests keep their evidence."""
    row = session.get(SubjectSite, (subject.id, site_id))
    if row is None:
        raise CustodyError(f"site {site_id} is not linked to {subject.id}")
    session.delete(row)
    session.flush()


def linked_sites(
    session: Session, subject_id: str, offset: int = 0, limit: int = 100
) -> list[SubjectSite]:
    """Return a subject's linked sites by site id."""
    stmt = select(SubjectSite).where(SubjectSite.subject_id == subject_id)
    return list(session.scalars(stmt.order_by(SubjectSite.site_id).offset(offset).limit(limit)))


def check_evidence(
    session: Session, subject: Subject, result: RapidTestResult, basis: list[str]
) -> None:
    """Refuse a test not made by the subject's own instruments or a lab it commissioned."""
    row = session.get(SubjectSite, (subject.id, result.site_id))
    if row is None:
        raise CertificateRefused(
            "test_result",
            f"result {result.result_id} was tested at site {result.site_id}, which is neither "
            f"a site of {subject.id} nor a lab it registered as commissioned (委托检测)",
        )
    needed = RELATION_BASIS[row.relation]
    if needed not in basis:
        raise CertificateError(
            "basis", f"a test from a {row.relation} site needs the {needed} basis"
        )


def transfer(
    session: Session, cert: Certificate, purchaser: Subject, now: dt.datetime, key_id: int | None
) -> CertificateTransfer:
    """Record that the certificate's issuer handed the lot to a purchaser."""
    if purchaser.kind != "purchaser":
        raise CustodyError(f"{purchaser.id} is not a purchaser")
    if purchaser.id == cert.subject_id:
        raise CustodyError("a lot is not transferred to its own issuer")
    if cert.status != "valid":
        raise CustodyError(f"{cert.number} is {cert.status}")
    if session.get(CertificateTransfer, (cert.id, purchaser.id)) is not None:
        raise CustodyError(f"{cert.number} is already transferred to {purchaser.id}")
    row = CertificateTransfer(
        certificate_id=cert.id, purchaser_id=purchaser.id, created_at=now, key_id=key_id
    )
    session.add(row)
    session.flush()
    return row


def transfers_of(
    session: Session, cert: Certificate, offset: int = 0, limit: int = 100
) -> list[CertificateTransfer]:
    """Return the purchasers a certificate's lot was handed to."""
    stmt = select(CertificateTransfer).where(CertificateTransfer.certificate_id == cert.id)
    order = (CertificateTransfer.created_at, CertificateTransfer.purchaser_id)
    return list(session.scalars(stmt.order_by(*order).offset(offset).limit(limit)))


def check_upstream(session: Session, purchaser: Subject, parent: Certificate) -> None:
    """Refuse an upstream lot neither transferred to the purchaser nor admitted at its site."""
    if parent.subject_id == purchaser.id:
        return  # splitting its own lot again
    handed = session.get(CertificateTransfer, (parent.id, purchaser.id))
    if handed is not None:
        return
    own = select(SubjectSite.site_id).where(
        SubjectSite.subject_id == purchaser.id, SubjectSite.relation == "own"
    )
    admitted = session.scalar(
        select(EntryCheck.id)
        .where(
            EntryCheck.certificate_id == parent.id,
            EntryCheck.status == "admitted",
            EntryCheck.site_id.in_(own),
        )
        .limit(1)
    )
    if admitted is None:
        raise CertificateRefused(
            "upstream",
            f"{parent.number} was neither transferred to {purchaser.id} by its issuer nor "
            f"admitted by an entry check at a site of {purchaser.id}",
        )
