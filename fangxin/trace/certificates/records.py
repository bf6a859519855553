"""Issuing 合格证 on the 2026 template: field rules, numbering, public codes, re-issue, voiding."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fangxin.db.bulk import bump
from fangxin.trace.certificates.models import (
    Certificate,
    CertificateLink,
    CertificateSequence,
)
from fangxin.trace.certificates.proofs import QualityProof, proofs_of
from fangxin.trace.certificates.signing import verify
from fangxin.trace.results.models import RapidTestResult

BASIS = ("quality_control", "self_test", "commissioned_test")
BASIS_LABELS = {
    "quality_control": "质量安全控制符合要求",
    "self_test": "自行检测合格",
    "commissioned_test": "委托检测合格",
}
# Labels of the pre-2026 templates, mapped as the 2026 template migration does (domain.md §1.3).
LEGACY_BASIS = {
    "自我承诺": "quality_control",
    "质量安全内部控制合格": "quality_control",
    "内部质量控制": "quality_control",
    "自我检测合格": "self_test",
    "自我检测": "self_test",
    "委托检测": "commissioned_test",
}
TEST_BASIS = frozenset({"self_test", "commissioned_test"})
COMMITMENTS = {
    "producer": "我承诺生产销售的食用农产品：未使用禁用农药、兽药及其他化合物；"
    "使用的常规农药、兽药残留不超标。",
    "purchaser": "我承诺收购销售的食用农产品：已按规定收取并保存该批次农产品承诺达标合格证"
    "或者其他质量安全合格证明；未违规使用保鲜剂、防腐剂、添加剂等。",
}
UNITS = {
    **dict.fromkeys(("kg", "KG", "Kg", "公斤", "千克"), "kg"),
    **dict.fromkeys(("g", "克"), "g"),
    **dict.fromkeys(("t", "吨"), "t"),
    **{
        u: u
        for u in (
            "斤",
            "箱",
            "件",
            "袋",
            "筐",
            "盒",
            "只",
            "头",
            "羽",
            "枚",
            "个",
            "把",
            "捆",
            "尾",
        )
    },
}
CODE_BYTES = 10  # 80 random bits: 16 base32 characters


class CertificateError(ValueError):
    """A certificate request that breaks a field or reconciliation rule."""

    def __init__(self, field: str, message: str) -> None:
        """Name the field at fault."""
        super().__init__(message)
        self.field = field


class CertificateRefused(CertificateError):
    """Evidence or an upstream lot the subject has no right to cite (403, nothing stored)."""


class CertificateNotFound(LookupError):
    """No certificate has that number or code."""


class CertificateConflict(ValueError):
    """The request conflicts with the certificate's state (already voided, duplicate lot)."""


def normalise_basis(values: list[str]) -> list[str]:
    """Map basis values (codes, 2026 labels or older labels) to codes, in template order."""
    by_label = {label: code for code, label in BASIS_LABELS.items()}
    codes = set()
    for value in values:
        code = value if value in BASIS else by_label.get(value) or LEGACY_BASIS.get(value)
        if code is None:
            raise CertificateError("basis", f"unknown basis {value!r}; use one of {BASIS}")
        codes.add(code)
    return [code for code in BASIS if code in codes]


def normalise_unit(text: str) -> str:
    """Return the canonical unit, or raise for units a certificate cannot state."""
    unit = UNITS.get(text.strip())
    if unit is None:
        raise CertificateError("unit", f"unit {text!r} is not one of {sorted(set(UNITS.values()))}")
    return unit


def to_milli(quantity: Decimal) -> int:
    """Return a quantity in thousandths of its unit."""
    return int(quantity * 1000)


def format_quantity(milli: int) -> str:
    """Format thousandths as the shortest exact decimal ("50", "12.5")."""
    return format((Decimal(milli) / 1000).normalize(), "f")


def new_code() -> str:
    """Return a fresh unguessable public code (80 random bits, base32)."""
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii").rstrip("=")


def next_numbers(session: Session, day: dt.date, count: int = 1) -> list[str]:
    """Hand out the day's next `count` numbers; the counter row serialises concurrent issuers.

    Call it last before the insert: the row stays locked until the caller commits.
    """
    key = day.strftime("%Y%m%d")
    last = bump(session, CertificateSequence.__table__, {"day": key}, "last", count)
    return [f"HGZ{key}-{n:06d}" for n in range(last - count + 1, last + 1)]


def find(session: Session, ref: str) -> Certificate | None:
    """Find a certificate by its number or its public code (codes are case-insensitive)."""
    ref = ref.strip()
    return session.scalar(
        select(Certificate).where(or_(Certificate.number == ref, Certificate.code == ref.upper()))
    )


def get(session: Session, ref: str) -> Certificate:
    """Return a certificate by number or code, or raise CertificateNotFound."""
    cert = find(session, ref)
    if cert is None:
        raise CertificateNotFound(f"no certificate {ref}")
    return cert


def signed_content(
    cert: Certificate,
    upstream: list[tuple[str, int]],
    evidence: tuple[str, str] | None,
    proofs: list[QualityProof] | None = None,
) -> dict[str, Any]:
    """Return the content a certificate's signature covers (what the label states, and links)."""
    content: dict[str, Any] = {
        "v": 1,
        "number": cert.number,
        "code": cert.code,
        "template": cert.template,
        "template_version": cert.template_version,
        "subject": {"id": cert.subject_id, "name": cert.subject_name, "contact": cert.contact},
        "product": cert.product,
        "quantity": format_quantity(cert.quantity_milli),
        "unit": cert.unit,
        "origin": cert.origin,
        "issued_at": cert.issued_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commitment": cert.commitment,
        "basis": list(cert.basis),
        "evidence": {"device": evidence[0], "result": evidence[1]} if evidence else None,
        "upstream": [{"number": n, "quantity": format_quantity(q)} for n, q in sorted(upstream)],
        "gtin": cert.gtin,
        "lot": cert.lot,
    }
    if proofs:  # only when cited: certificates signed before proofs existed still verify
        content["proofs"] = [
            {"kind": p.kind, "number": p.number, "photo_sha256": p.photo_sha256} for p in proofs
        ]
    if cert.template_version != "2026" and cert.basis_printed is not None:
        # An import's labels as printed; 2026 labels follow from the codes, already covered.
        content["v"] = 2
        content["basis_printed"] = list(cert.basis_printed)
    return content


def content_of(
    session: Session, cert: Certificate, upstream: list[tuple[str, int]] | None = None
) -> dict[str, Any]:
    """Rebuild a stored certificate's signed content from the database."""
    if upstream is None:
        rows = session.execute(
            select(Certificate.number, CertificateLink.quantity_milli)
            .join(CertificateLink, CertificateLink.parent_id == Certificate.id)
            .where(CertificateLink.child_id == cert.id)
        )
        upstream = [(n, q) for n, q in rows]
    evidence = None
    if cert.test_result_id is not None:
        result = session.get(RapidTestResult, cert.test_result_id)
        evidence = (result.device_id, result.result_id) if result else ("?", "?")
    return signed_content(cert, upstream, evidence, proofs_of(session, cert.id))


def verify_certificate(session: Session, cert: Certificate) -> str | None:
    """Check a stored certificate against its signature; None when it holds."""
    return verify(session, cert.key_id, content_of(session, cert), cert.signature)


def revoke(session: Session, cert: Certificate, reason: str, now: dt.datetime) -> None:
    """Void a certificate with a reason; it stays viewable and says so."""
    if cert.status == "voided":
        raise CertificateConflict(f"{cert.number} was already voided")
    cert.status = "voided"
    cert.void_reason = reason
    cert.voided_at = now
    session.flush()
