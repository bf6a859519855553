"""Issuing a 合格证: evidence, GS1 identity, re-issue from upstream lots with reconciliation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fangxin.trace.certificates.custody import check_evidence, check_upstream
from fangxin.trace.certificates.digital_link import DigitalLinkError, check_value, normalise_gtin
from fangxin.trace.certificates.models import Certificate, CertificateLink, CertificateTest, Subject
from fangxin.trace.certificates.proofs import (
    NO_PROOF_NO_PURCHASE,
    ProofError,
    QualityProof,
    held_proofs,
    link_proofs,
)
from fangxin.trace.certificates.recalls import recalled_ids
from fangxin.trace.certificates.records import (
    CertificateConflict,
    CertificateError,
    find,
    format_quantity,
    new_code,
    next_numbers,
    normalise_unit,
    signed_content,
    to_milli,
)
from fangxin.trace.certificates.schemas import CertificateIn, UpstreamIn
from fangxin.trace.certificates.signing import Signer, ensure_registered
from fangxin.trace.certificates.template_versions import printed
from fangxin.trace.results.models import RapidTestResult


def drawn(session: Session, parent_id: int) -> int:
    """Return how much of a certificate's quantity valid re-issues have drawn."""
    total = session.scalar(
        select(func.coalesce(func.sum(CertificateLink.quantity_milli), 0))
        .join(Certificate, Certificate.id == CertificateLink.child_id)
        .where(CertificateLink.parent_id == parent_id, Certificate.status == "valid")
    )
    return int(total or 0)


@dataclass(frozen=True, slots=True)
class _Draw:
    parent: Certificate
    quantity_milli: int


def _draws(session: Session, subject: Subject, data: CertificateIn, unit: str) -> list[_Draw]:
    items = [UpstreamIn(certificate=u) if isinstance(u, str) else u for u in data.upstream]
    if not items:
        return []
    if subject.kind != "purchaser":
        raise CertificateError("upstream", "only purchasers re-issue from upstream certificates")
    if len(items) > 1 and any(item.quantity is None for item in items):
        raise CertificateError("upstream", "a merged lot states the quantity drawn from each")
    draws: list[_Draw] = []
    for item in items:
        parent = find(session, item.certificate)
        if parent is None:
            raise CertificateError("upstream", f"no certificate {item.certificate}")
        # Lock the parent row (PostgreSQL) so concurrent re-issues cannot overdraw it.
        session.execute(select(Certificate.id).where(Certificate.id == parent.id).with_for_update())
        check_upstream(session, subject, parent)
        if any(d.parent.id == parent.id for d in draws):
            raise CertificateError("upstream", f"{parent.number} is listed twice")
        if parent.status != "valid" or recalled_ids(session, [parent.id]):
            raise CertificateError("upstream", f"{parent.number} is {parent.status} or recalled")
        if parent.unit != unit or parent.product != data.product:
            raise CertificateError(
                "upstream",
                f"{parent.number} is {parent.product} in {parent.unit}: not the same lot",
            )
        want = to_milli(item.quantity if item.quantity is not None else data.quantity)
        left = parent.quantity_milli - drawn(session, parent.id)
        if want > left:
            raise CertificateError(
                "upstream",
                f"{parent.number} has {format_quantity(left)} {unit} left, "
                f"not {format_quantity(want)}",
            )
        draws.append(_Draw(parent, want))
    total = sum(d.quantity_milli for d in draws)
    if to_milli(data.quantity) > total:
        raise CertificateError(
            "quantity", f"the lot exceeds the {format_quantity(total)} {unit} drawn from upstream"
        )
    return draws


def _evidence(
    session: Session, subject: Subject, data: CertificateIn, basis: list[str]
) -> RapidTestResult | None:
    if data.test_result is None:
        return None
    result = session.scalar(
        select(RapidTestResult).where(
            RapidTestResult.device_id == data.test_result.device,
            RapidTestResult.result_id == data.test_result.id,
        )
    )
    if result is None:
        raise CertificateError("test_result", "no such rapid-test result")
    check_evidence(session, subject, result, basis)
    if result.verdict != "negative":
        raise CertificateError(
            "test_result", f"only negative results count, this is {result.verdict}"
        )
    if result.sample_name != data.product:
        raise CertificateError("test_result", f"the test was on {result.sample_name}, not this lot")
    return result


def _proofs(
    session: Session, subject: Subject, data: CertificateIn, drawn_upstream: bool
) -> list[QualityProof]:
    try:
        proofs = held_proofs(session, data.proofs, subject_id=subject.id)
    except ProofError as exc:
        raise CertificateError(exc.field, str(exc)) from exc
    # Records imported from before the 2026 Order are kept as they were issued.
    rule_applies = subject.kind == "purchaser" and data.template_version == "2026"
    if rule_applies and not drawn_upstream and not proofs:
        raise CertificateError(
            "upstream",
            "a purchaser's certificate cites an upstream certificate or a recorded proof: "
            + NO_PROOF_NO_PURCHASE,
        )
    return proofs


def _gtin_lot(subject: Subject, data: CertificateIn) -> tuple[str | None, str | None]:
    if data.gtin is None:
        if data.lot is not None:
            raise CertificateError("lot", "a lot code goes with a GTIN")
        return None, None
    if not subject.gtin_prefix:
        raise CertificateError("gtin", "the subject has no GS1 company prefix")
    try:
        gtin = normalise_gtin(data.gtin)
        if data.lot is not None:
            check_value("10", data.lot)
    except DigitalLinkError as exc:
        raise CertificateError("gtin" if "(01)" in str(exc) else "lot", str(exc)) from exc
    if not gtin[1:].startswith(subject.gtin_prefix):
        raise CertificateError("gtin", f"the GTIN is not under prefix {subject.gtin_prefix}")
    return gtin, data.lot


@dataclass(slots=True)
class Draft:
    """A validated certificate waiting for its number, its signature and its row."""

    cert: Certificate
    draws: list[_Draw]
    evidence: RapidTestResult | None
    proofs: list[QualityProof]
    day: dt.date


def prepare(
    session: Session, data: CertificateIn, subject: Subject, now: dt.datetime, tz: str
) -> Draft:
    """Validate a request against the records; raise for bad input, number nothing."""
    commitment, basis, basis_printed = printed(
        data.template_version, subject.kind, data.basis, data.commitment
    )
    unit = normalise_unit(data.unit)
    draws = _draws(session, subject, data, unit)
    evidence = _evidence(session, subject, data, basis)
    proofs = _proofs(session, subject, data, bool(draws))
    gtin, lot = _gtin_lot(subject, data)
    issued_at = (data.issued_at or now).astimezone(dt.UTC).replace(microsecond=0)
    if gtin is not None:
        # Never the sequential number: /01/{gtin}/10/{lot} would resolve a guess to the code.
        lot = lot or f"L{new_code()}"
        clash = select(Certificate.id).where(Certificate.gtin == gtin, Certificate.lot == lot)
        if session.scalar(clash) is not None:
            raise CertificateConflict(f"GTIN {gtin} lot {lot} already has a certificate")
    cert = Certificate(
        code=new_code(),
        subject_id=subject.id,
        template=subject.kind,
        template_version=data.template_version,
        product=data.product,
        quantity_milli=to_milli(data.quantity),
        unit=unit,
        origin=data.origin,
        issued_at=issued_at,
        subject_name=subject.name,
        contact=data.contact or subject.contact,
        commitment=commitment,
        basis=basis,
        basis_printed=basis_printed,
        gtin=gtin,
        lot=lot,
        test_result_id=evidence.id if evidence else None,
        status="valid",
        created_at=now,
    )
    return Draft(cert, draws, evidence, proofs, issued_at.astimezone(ZoneInfo(tz)).date())


def store(session: Session, drafts: list[Draft], signer: Signer) -> None:
    """Give validated drafts their numbers, sign and insert them (the caller commits).

    The day counters are bumped last, once a day for all drafts, in day order: each counter
    row stays locked until the commit, and no draft that fails validation ever takes a number.
    """
    key_id = ensure_registered(session, signer)
    by_day: dict[dt.date, list[Draft]] = {}
    for draft in drafts:
        by_day.setdefault(draft.day, []).append(draft)
    for day in sorted(by_day):
        group = by_day[day]
        for draft, number in zip(group, next_numbers(session, day, len(group)), strict=True):
            draft.cert.number = number
    for draft in drafts:
        cert = draft.cert
        cert.key_id = key_id
        upstream = [(d.parent.number, d.quantity_milli) for d in draft.draws]
        ev = (draft.evidence.device_id, draft.evidence.result_id) if draft.evidence else None
        cert.signature = signer.sign(signed_content(cert, upstream, ev, draft.proofs))
    session.add_all([draft.cert for draft in drafts])
    session.flush()  # one INSERT ... RETURNING for all of them
    for draft in drafts:
        cert_id = draft.cert.id
        for d in draft.draws:
            session.add(
                CertificateLink(
                    child_id=cert_id, parent_id=d.parent.id, quantity_milli=d.quantity_milli
                )
            )
        if draft.evidence is not None:
            session.add(
                CertificateTest(
                    certificate_id=cert_id, result_id=draft.evidence.id, source="evidence"
                )
            )
        link_proofs(session, cert_id, draft.proofs)
    session.flush()


def issue(
    session: Session,
    data: CertificateIn,
    subject: Subject,
    signer: Signer,
    now: dt.datetime,
    tz: str,
) -> Certificate:
    """Validate, number, sign and store a certificate (the caller commits)."""
    draft = prepare(session, data, subject, now, tz)
    store(session, [draft], signer)
    return draft.cert
