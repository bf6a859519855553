"""What the API and the scan page show about a certificate, assembled in one place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Executable, bindparam, select
from sqlalchemy.orm import Session

from fangxin.config import Settings
from fangxin.devices.models import Site
from fangxin.trace.certificates.digital_link import build
from fangxin.trace.certificates.models import (
    Certificate,
    CertificateLink,
    CertificateTest,
    Recall,
    Subject,
)
from fangxin.trace.certificates.proofs import ProofOut, proof_view, proofs_of
from fangxin.trace.certificates.recalls import lineage, recalls_affecting
from fangxin.trace.certificates.records import content_of, format_quantity, signed_content
from fangxin.trace.certificates.schemas import (
    CertificateIn,
    CertificateOut,
    LinkOut,
    SignatureOut,
    TestOut,
)
from fangxin.trace.certificates.signing import ALGORITHM, Signer, verify, verify_with
from fangxin.trace.certificates.template_versions import shown_labels, versions
from fangxin.trace.results.models import RapidTestResult, TestItem

DEFAULT_PUBLIC_URL = "http://localhost:8000"


def public_base(settings: Settings) -> str:
    """Return the base URL printed into QR codes, without a trailing slash."""
    return (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def scan_url(settings: Settings, cert: Certificate) -> str:
    """Return the URL a certificate's QR code holds."""
    return f"{public_base(settings)}/c/{cert.code}"


def link_out(cert: Certificate, quantity_milli: int) -> LinkOut:
    """Describe a linked certificate and the quantity the link carries."""
    return LinkOut(
        number=cert.number,
        code=cert.code,
        product=cert.product,
        quantity=float(format_quantity(quantity_milli)),
        unit=cert.unit,
        status=cert.status,
    )


def _links(session: Session, cert: Certificate, direction: str) -> list[tuple[Certificate, int]]:
    other, mine = (
        (CertificateLink.parent_id, CertificateLink.child_id)
        if direction == "up"
        else (CertificateLink.child_id, CertificateLink.parent_id)
    )
    rows = session.execute(
        select(Certificate, CertificateLink.quantity_milli)
        .join(CertificateLink, other == Certificate.id)
        .where(mine == cert.id)
        .order_by(Certificate.number)
    )
    return [(c, q) for c, q in rows]


@dataclass(frozen=True, slots=True)
class Lineage:
    """A certificate's direct parents, all its ancestors and the recalls that reach it."""

    parents: list[tuple[Certificate, int]]
    ancestors: list[int]
    recalls: list[tuple[Certificate, Recall]]


def lineage_of(session: Session, cert: Certificate) -> Lineage:
    """Look a certificate's upstream up once for everything that needs it."""
    parents = _links(session, cert, "up")
    ancestors = lineage(session, cert.id, "up") if parents else []
    return Lineage(parents, ancestors, recalls_affecting(session, cert, ancestors))


@cache
def _tests_query() -> Executable:
    """Build once the query of some lots' tests (the scan page runs it on every render)."""
    return (
        select(RapidTestResult, TestItem.name_zh, Site.name, CertificateTest.source)
        .join(CertificateTest, CertificateTest.result_id == RapidTestResult.id)
        .join(TestItem, TestItem.code == RapidTestResult.item_code)
        .join(Site, Site.id == RapidTestResult.site_id)
        .where(CertificateTest.certificate_id.in_(bindparam("ids", expanding=True)))
        .order_by(RapidTestResult.ts.desc())
    )


def tests_of(session: Session, cert_ids: list[int]) -> list[TestOut]:
    """Return the rapid tests linked to these lots, newest first."""
    rows = session.execute(_tests_query(), {"ids": cert_ids})
    out: dict[int, TestOut] = {}
    for result, item_name, site_name, source in rows:
        out.setdefault(
            result.id,
            TestOut(
                device=result.device_id,
                id=result.result_id,
                item=result.item_code,
                item_name=item_name,
                verdict=result.verdict,
                value=result.value,
                site=result.site_id,
                site_name=site_name,
                ts=result.ts,
                source=source,
            ),
        )
    return list(out.values())


def certificate_view(
    session: Session, cert: Certificate, settings: Settings, facts: Lineage | None = None
) -> CertificateOut:
    """Return the API view of a certificate, with the signature checked now."""
    facts = facts or lineage_of(session, cert)
    content = content_of(session, cert, [(c.number, q) for c, q in facts.parents])
    subject = session.get(Subject, cert.subject_id)
    return build_view(
        cert,
        settings,
        Evidence(
            content=content,
            problem=verify(session, cert.key_id, content, cert.signature),
            subject_kind=subject.kind if subject else cert.template,
            facts=facts,
            downstream=_links(session, cert, "down"),
            tests=tests_of(session, [cert.id, *facts.ancestors]),
            proofs=[proof_view(p) for p in proofs_of(session, cert.id)],
        ),
    )


def links_nothing(data: CertificateIn) -> bool:
    """Tell whether a request's certificate would cite no upstream lot, test or proof."""
    return not data.upstream and data.test_result is None and not data.proofs


def fresh_view(
    session: Session, cert: Certificate, settings: Settings, subject: Subject, signer: Signer
) -> CertificateOut:
    """Return certificate_view of a certificate just issued from a request that links nothing.

    Such a certificate has no link, test or proof rows, and nothing downstream or recalled can
    cite it before its number is answered: the view is its row and its signature, checked now.
    """
    content = signed_content(cert, [], None, [])
    if cert.key_id == signer.key_id:
        # Its transaction published this key: check the signature without reading the key back.
        problem = verify_with(signer.public, content, cert.signature)
    else:
        problem = verify(session, cert.key_id, content, cert.signature)
    return build_view(
        cert,
        settings,
        Evidence(
            content=content,
            problem=problem,
            subject_kind=subject.kind,
            facts=Lineage([], [], []),
            downstream=[],
            tests=[],
            proofs=[],
        ),
    )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a certificate's view needs beyond its row, however it was looked up."""

    content: dict[str, Any]
    problem: str | None
    subject_kind: str
    facts: Lineage
    downstream: list[tuple[Certificate, int]]
    tests: list[TestOut]
    proofs: list[ProofOut]


def build_view(cert: Certificate, settings: Settings, ev: Evidence) -> CertificateOut:
    """Assemble the view of a certificate from facts already looked up (no queries)."""
    recalls = ev.facts.recalls
    link = None
    if cert.gtin and cert.lot:
        link = build(public_base(settings), cert.gtin, cert.lot)
    return CertificateOut(
        number=cert.number,
        code=cert.code,
        url=scan_url(settings, cert),
        status=cert.status,
        recalled=any(c.id == cert.id for c, _ in recalls),
        upstream_recalled=any(c.id != cert.id for c, _ in recalls),
        void_reason=cert.void_reason,
        voided_at=cert.voided_at,
        subject=cert.subject_id,
        subject_name=cert.subject_name,
        subject_kind=ev.subject_kind,
        contact=cert.contact,
        product=cert.product,
        quantity=float(format_quantity(cert.quantity_milli)),
        unit=cert.unit,
        origin=cert.origin,
        issued_at=cert.issued_at,
        template=cert.template,
        template_version=cert.template_version,
        commitment=cert.commitment,
        basis=list(cert.basis),
        basis_labels=shown_labels(cert.basis, cert.basis_printed),
        basis_printed_known=cert.basis_printed is not None,
        template_source=versions()[cert.template_version]["source"],
        gtin=cert.gtin,
        lot=cert.lot,
        digital_link=link,
        upstream=[link_out(c, q) for c, q in ev.facts.parents],
        downstream=[link_out(c, q) for c, q in ev.downstream],
        tests=ev.tests,
        proofs=ev.proofs,
        signature=SignatureOut(
            alg=ALGORITHM,
            key_id=cert.key_id,
            value=cert.signature,
            verified=ev.problem is None,
            problem=ev.problem,
        ),
        signed=ev.content,
    )
