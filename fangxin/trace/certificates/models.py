"""Tables of 合格证 traceability: subjects, certificates, links, scans, entry checks, recalls."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

SUBJECT_KINDS = ("producer", "purchaser")
CERT_STATUSES = ("valid", "voided")
# external_certificate: a certificate or proof fangxin cannot verify, awaiting a visual check.
ENTRY_STATUSES = ("admitted", "pending_test", "refused", "external_certificate")
# own: the subject's own sites and instruments (自行检测); commissioned: a lab it hired (委托检测).
SITE_RELATIONS = ("own", "commissioned")


class Subject(Base):
    """A 承诺主体: a producer (enterprise, co-op, farmer) or a purchaser (收购者)."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    contact: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64), index=True)
    gtin_prefix: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """A public key that signed certificates; retired keys still verify old signatures."""

    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="Ed25519")
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[dt.datetime | None]


class CertificateSequence(Base):
    """The last sequence number handed out for a day's certificate numbers."""

    __tablename__ = "certificate_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class Certificate(Base):
    """A 承诺达标合格证 as issued: the printed fields are a snapshot, signed at issue."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("gtin", "lot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    template: Mapped[str] = mapped_column(String(16))
    template_version: Mapped[str] = mapped_column(String(8))
    product: Mapped[str] = mapped_column(String(100))
    # Thousandths of the unit: reconciliation of split and merged lots stays exact.
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(8))
    origin: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime]
    subject_name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(Text)
    basis: Mapped[list[str]] = mapped_column(JSON)
    # The basis labels as printed on the certificate's template version (issue 13 item 11);
    # None on certificates imported before the printed labels were kept.
    basis_printed: Mapped[list[str] | None] = mapped_column(JSON)
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot: Mapped[str | None] = mapped_column(String(20))
    test_result_id: Mapped[int | None] = mapped_column(ForeignKey("rapid_test_results.id"))
    status: Mapped[str] = mapped_column(String(16), default="valid")
    void_reason: Mapped[str | None] = mapped_column(String(200))
    voided_at: Mapped[dt.datetime | None]
    key_id: Mapped[str] = mapped_column(ForeignKey("signing_keys.key_id"))
    signature: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CertificateLink(Base):
    """A re-issued certificate drawing a quantity from an upstream certificate."""

    __tablename__ = "certificate_links"

    child_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(
        ForeignKey("certificates.id"), primary_key=True, index=True
    )
    quantity_milli: Mapped[int] = mapped_column(BigInteger)


class CertificateTest(Base):
    """A rapid-test result about a certificate's lot (evidence, lab scan or entry test)."""

    __tablename__ = "certificate_tests"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("rapid_test_results.id"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(String(16))


class CertificateScan(Base):
    """Scans of a certificate per day and pseudonymous visitor; no IP or user agent is kept."""

    __tablename__ = "certificate_scans"
    __table_args__ = (UniqueConstraint("certificate_id", "day", "visitor", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    # HMAC of (day, client) under the server secret: unlinkable across days, not reversible.
    visitor: Mapped[str] = mapped_column(String(16))
    # The market a signed-in scan declared (?m=site); "" when none or anonymous.
    site_id: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int] = mapped_column(default=1)
    # Made by a signed-in account: only such scans (and entry checks) count as evidence (§5).
    signed_in: Mapped[bool] = mapped_column(default=False, server_default=false())
    first_at: Mapped[dt.datetime]
    last_at: Mapped[dt.datetime]


class EntryCheck(Base):
    """A market entry check (入场查验) of one lot."""

    __tablename__ = "entry_checks"
    __table_args__ = (
        Index("ix_entry_checks_site_checked_at", "site_id", "checked_at"),
        Index("ix_entry_checks_site_status", "site_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), index=True)
    certificate_ref: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(100))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(8))
    stall: Mapped[str | None] = mapped_column(String(50))
    vendor: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(24))
    flags: Mapped[list[str]] = mapped_column(JSON)
    checked_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]
    test_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("rapid_test_results.id"), unique=True
    )
    key_id: Mapped[int | None]
    # The food category the desk declared (entry_rules.toml names and aliases).
    category: Mapped[str | None] = mapped_column(String(50))
    # The fit rule a test decision applied, with its source, as it was then (the table may change).
    test_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    visual_checked_at: Mapped[dt.datetime | None]
    visual_note: Mapped[str | None] = mapped_column(String(200))
    visual_key_id: Mapped[int | None]


class Recall(Base):
    """A regulator's recall of a certificate's lot; downstream lots are flagged through links."""

    __tablename__ = "recalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    recalled_at: Mapped[dt.datetime]
    key_id: Mapped[int | None]


class SubjectSite(Base):
    """A site whose instruments test for a subject: its own, or a commissioned lab (委托检测)."""

    __tablename__ = "subject_sites"

    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True, index=True)
    relation: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    key_id: Mapped[int | None]


class CertificateTransfer(Base):
    """An upstream issuer naming the purchaser its lot went to: the purchaser may draw on it."""

    __tablename__ = "certificate_transfers"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    purchaser_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    key_id: Mapped[int | None]


class PageChange(Base):
    """A write that changes what a certificate's scan page shows: logged by triggers (0019).

    certificate_id None: every page (a market, subject or signing key changed). tx is the
    writing transaction's id on PostgreSQL (ids there are not in commit order), None on SQLite.
    """

    __tablename__ = "page_changes"
    # AUTOINCREMENT: ids never go back once old rows are pruned (SQLite's feed cursor).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int | None]
    tx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    at_s: Mapped[float] = mapped_column(Float)
