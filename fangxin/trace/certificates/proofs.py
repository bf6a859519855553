"""Other quality proofs (其他质量安全合格证明): type, number and photo of a lot's proof.

A purchaser that buys a lot without an upstream 合格证 records the proof it collected instead
(动物检疫合格证明, 肉品品质检验合格证明, a test report, or another proof) and cites it on the
certificate it issues. The table and functions are not tied to certificates: an entry check can
record and cite proofs the same way (`site_id` instead of `subject_id`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fangxin.db import Base

PROOF_TYPES = {
    "animal_quarantine": "动物检疫合格证明",
    "meat_quality": "肉品品质检验合格证明",
    "test_report": "检测报告",
    "other": "其他质量安全合格证明",
}
ProofType = Literal["animal_quarantine", "meat_quality", "test_report", "other"]
# "No certificate, no purchase": the rule a purchaser's certificate is checked against.
NO_PROOF_NO_PURCHASE = (
    "收购者应当收取并保存承诺达标合格证或者其他质量安全合格证明，无证不收"
    "（《农产品质量安全承诺达标合格证管理办法》，农业农村部令2025年第4号，2026年2月1日施行；"
    "据广西农业农村厅摘要，条款号未核实。另见《农产品质量安全法》（2022年修订）收购者收取、保存合格证或其他合格证明的规定）"
)
# 本地设置 (a local setting, not from a rule): big enough for a phone photo of a paper proof.
PHOTO_MAX_BYTES = 2 * 1024 * 1024
# Recognised by their first bytes, never by the client's Content-Type.
PHOTO_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class ProofError(ValueError):
    """A proof or photo that cannot be recorded or cited."""

    def __init__(self, field: str, message: str) -> None:
        """Name the field at fault."""
        super().__init__(message)
        self.field = field


class QualityProof(Base):
    """A proof a purchaser or market collected for a lot, with an optional photo of it."""

    __tablename__ = "quality_proofs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    number: Mapped[str] = mapped_column(String(64))
    issued_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(200))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    photo_type: Mapped[str | None] = mapped_column(String(16))
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    key_id: Mapped[int | None]


class CertificateProof(Base):
    """A proof cited by a certificate (a purchaser's lot bought on that proof)."""

    __tablename__ = "certificate_proofs"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    proof_id: Mapped[int] = mapped_column(
        ForeignKey("quality_proofs.id"), primary_key=True, index=True
    )


class ProofIn(BaseModel):
    """A proof to record (its photo, if any, comes as a multipart file)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: ProofType
    number: Annotated[str, Field(min_length=1, max_length=64)]
    issued_by: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    note: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ProofOut(BaseModel):
    """A recorded proof as the API shows it."""

    id: int
    kind: str
    kind_label: str
    number: str
    issued_by: str | None
    note: str | None
    subject: str | None
    site: str | None
    photo: bool
    photo_type: str | None
    photo_sha256: str | None
    created_at: dt.datetime


def photo_type(data: bytes) -> str:
    """Return a photo's media type from its first bytes, refusing other files and large ones."""
    if not data:
        raise ProofError("photo", "the photo is empty")
    if len(data) > PHOTO_MAX_BYTES:
        raise ProofError(
            "photo", f"the photo has {len(data)} bytes, more than {PHOTO_MAX_BYTES} (本地设置)"
        )
    for magic, media in PHOTO_MAGIC.items():
        if data.startswith(magic):
            return media
    raise ProofError("photo", "the photo must be a JPEG or PNG image")


def record_proof(
    session: Session,
    data: ProofIn,
    photo: bytes | None,
    now: dt.datetime,
    *,
    subject_id: str | None = None,
    site_id: str | None = None,
    key_id: int | None = None,
) -> QualityProof:
    """Store a proof (and its photo, checked first) held by a subject or a site."""
    if (subject_id is None) == (site_id is None):
        raise ProofError("holder", "a proof is held by one subject or one site")
    media = photo_type(photo) if photo is not None else None
    proof = QualityProof(
        kind=data.kind,
        number=data.number,
        issued_by=data.issued_by,
        note=data.note,
        subject_id=subject_id,
        site_id=site_id,
        photo=photo,
        photo_type=media,
        photo_sha256=hashlib.sha256(photo).hexdigest() if photo is not None else None,
        created_at=now,
        key_id=key_id,
    )
    session.add(proof)
    session.flush()
    return proof


def proof_view(proof: QualityProof) -> ProofOut:
    """Describe a proof (the photo itself is served separately)."""
    return ProofOut(
        id=proof.id,
        kind=proof.kind,
        kind_label=PROOF_TYPES.get(proof.kind, proof.kind),
        number=proof.number,
        issued_by=proof.issued_by,
        note=proof.note,
        subject=proof.subject_id,
        site=proof.site_id,
        photo=proof.photo_sha256 is not None,
        photo_type=proof.photo_type,
        photo_sha256=proof.photo_sha256,
        created_at=proof.created_at,
    )


def held_proofs(
    session: Session, ids: list[int], *, subject_id: str | None = None, site_id: str | None = None
) -> list[QualityProof]:
    """Return the proofs of these ids, refusing any the holder did not record itself."""
    if not ids:
        return []
    if len(set(ids)) != len(ids):
        raise ProofError("proofs", "a proof is listed twice")
    found = {p.id: p for p in session.scalars(select(QualityProof).where(QualityProof.id.in_(ids)))}
    for proof_id in ids:
        proof = found.get(proof_id)
        if proof is None or proof.subject_id != subject_id or proof.site_id != site_id:
            raise ProofError("proofs", f"proof {proof_id} was not recorded by this holder")
    return [found[i] for i in ids]


def link_proofs(session: Session, certificate_id: int, proofs: list[QualityProof]) -> None:
    """Record that a certificate cites these proofs."""
    for proof in proofs:
        session.add(CertificateProof(certificate_id=certificate_id, proof_id=proof.id))
    session.flush()


def proofs_of(session: Session, certificate_id: int) -> list[QualityProof]:
    """Return the proofs a certificate cites."""
    stmt = (
        select(QualityProof)
        .join(CertificateProof, CertificateProof.proof_id == QualityProof.id)
        .where(CertificateProof.certificate_id == certificate_id)
        .order_by(QualityProof.id)
    )
    return list(session.scalars(stmt))
