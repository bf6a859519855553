"""Other proofs shown at an entry check (动物检疫合格证明, 肉品品质检验合格证明, 检测报告…)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fangxin.db import Base
from fangxin.trace.certificates.entry_rules import proof_types
from fangxin.trace.certificates.proofs import PHOTO_MAX_BYTES, ProofError, photo_type

ProofType = Literal["animal_quarantine", "meat_quality", "test_report", "other"]
# One photo rule for every proof: the purchasers' proofs module holds the limit and the check.
MAX_PHOTO_BYTES = PHOTO_MAX_BYTES


class EntryProof(Base):
    """A proof other than a 合格证 recorded at an entry check, with its photo."""

    __tablename__ = "entry_proofs"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entry_checks.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64))
    photo: Mapped[bytes] = mapped_column(LargeBinary)
    photo_type: Mapped[str] = mapped_column(String(16))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime]


class EntryProofIn(BaseModel):
    """A proof as the entry desk records it: type, number and a photo (base64 JPEG or PNG)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: ProofType
    number: Annotated[str, Field(min_length=1, max_length=64)]
    photo: Annotated[str, Field(min_length=8, max_length=MAX_PHOTO_BYTES * 4 // 3 + 4)]


class EntryProofOut(BaseModel):
    """A recorded proof (the photo is fetched on its own URL)."""

    id: int
    type: str
    type_name: str
    number: str
    photo_type: str
    photo_sha256: str
    source: str


def decode_photo(text: str) -> tuple[bytes, str]:
    """Return a photo's bytes and media type, or raise ProofError saying what is wrong."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # a data URL from a browser's file reader
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError("photo", "the photo must be base64 (JPEG or PNG)") from exc
    return raw, photo_type(raw)


def check_proofs(proofs: list[EntryProofIn]) -> list[tuple[EntryProofIn, bytes, str]]:
    """Decode every proof's photo before anything is stored (nothing half-stored)."""
    out = []
    for i, proof in enumerate(proofs):
        try:
            raw, media = decode_photo(proof.photo)
        except ProofError as exc:
            raise ProofError(f"proofs[{i}].photo", str(exc)) from exc
        out.append((proof, raw, media))
    return out


def add_proofs(
    session: Session,
    entry_id: int,
    checked: list[tuple[EntryProofIn, bytes, str]],
    now: dt.datetime,
) -> None:
    """Store an entry's checked proofs."""
    for proof, raw, media in checked:
        session.add(
            EntryProof(
                entry_id=entry_id,
                type=proof.type,
                number=proof.number,
                photo=raw,
                photo_type=media,
                photo_sha256=hashlib.sha256(raw).hexdigest(),
                recorded_at=now,
            )
        )
    session.flush()


def proofs_of(session: Session, entry_id: int) -> list[EntryProofOut]:
    """Return an entry's proofs, in the order recorded."""
    rows = session.scalars(
        select(EntryProof).where(EntryProof.entry_id == entry_id).order_by(EntryProof.id)
    )
    kinds = proof_types()
    return [
        EntryProofOut(
            id=p.id,
            type=p.type,
            type_name=kinds[p.type]["name"],
            number=p.number,
            photo_type=p.photo_type,
            photo_sha256=p.photo_sha256,
            source=kinds[p.type]["source"],
        )
        for p in rows
    ]


def photo_of(session: Session, entry_id: int, proof_id: int) -> EntryProof | None:
    """Return one proof of an entry (with its photo), or None."""
    proof = session.get(EntryProof, proof_id)
    return proof if proof is not None and proof.entry_id == entry_id else None
