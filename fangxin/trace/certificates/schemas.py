"""Pydantic models at the boundary of 合格证 traceability (HTTP bodies and answers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from fangxin.contract.ids import Id
from fangxin.trace.certificates.credit_code import check_credit_code
from fangxin.trace.certificates.entry_proofs import EntryProofIn, EntryProofOut
from fangxin.trace.certificates.proofs import ProofOut

Text = Annotated[str, Field(min_length=1, max_length=100)]
Quantity = Annotated[Decimal, Field(gt=0, le=Decimal("1000000000"), decimal_places=3)]
Reason = Annotated[str, Field(min_length=2, max_length=200)]
Ref = Annotated[str, Field(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubjectIn(_In):
    """A producer or purchaser to register."""

    id: Id
    kind: Literal["producer", "purchaser"]
    category: Literal["enterprise", "cooperative", "family_farm", "farmer", "individual"] | None = (
        None
    )
    name: Annotated[str, Field(min_length=2, max_length=200)]
    credit_code: str | None = None
    contact: Annotated[str, Field(min_length=5, max_length=64)]
    district: Annotated[str, Field(min_length=1, max_length=64)]
    gtin_prefix: Annotated[str, Field(pattern=r"^[0-9]{6,12}$")] | None = None

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str | None) -> str | None:
        return None if value is None else check_credit_code(value)


class SubjectOut(BaseModel):
    """A registered subject."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    category: str | None
    name: str
    credit_code: str | None
    contact: str
    district: str
    gtin_prefix: str | None
    created_at: dt.datetime


class TestRef(_In):
    """A rapid-test result, named as the lab's device and result ids."""

    __test__ = False  # not a pytest test class

    device: Ref
    id: Ref


class UpstreamIn(_In):
    """An upstream certificate (number or code) and the quantity drawn from it."""

    certificate: Ref
    quantity: Quantity | None = None


class CertificateIn(_In):
    """A certificate to issue (2026 template unless importing an older one)."""

    subject: Ref
    product: Annotated[str, Field(min_length=1, max_length=50)]
    quantity: Quantity
    unit: Annotated[str, Field(min_length=1, max_length=8)]
    origin: Annotated[str, Field(min_length=2, max_length=200)]
    basis: Annotated[list[str], Field(min_length=1, max_length=4)]
    test_result: TestRef | None = None
    upstream: list[UpstreamIn | Ref] = Field(default_factory=list, max_length=50)
    # Ids of proofs the subject recorded (其他质量安全合格证明), for lots bought without a 合格证.
    proofs: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=20
    )
    gtin: str | None = None
    lot: str | None = None
    contact: Annotated[str, Field(min_length=5, max_length=64)] | None = None
    # Importing records of an earlier template keeps their version and issue time (admin only).
    template_version: Literal["2026", "2023", "2019"] = "2026"
    issued_at: AwareDatetime | None = None
    # An older certificate's commitment text as printed (required when importing one).
    commitment: Annotated[str, Field(min_length=2, max_length=500)] | None = None


class ReasonIn(_In):
    """Why a certificate is voided or recalled."""

    reason: Reason


class EntryIn(_In):
    """A lot arriving at a market, with the certificate scanned (code or number) or none."""

    certificate: Ref | None
    product: Annotated[str, Field(min_length=1, max_length=50)]
    quantity: Quantity
    unit: Annotated[str, Field(min_length=1, max_length=8)]
    stall: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    vendor: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    # The food category (蔬菜, 畜禽肉, 水产品…): which rapid-test items may admit the lot.
    category: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    proofs: list[EntryProofIn] = Field(default_factory=list, max_length=5)


class VisualCheckIn(_In):
    """The desk's visual check of an external certificate or proof: admit, test or refuse."""

    outcome: Literal["admit", "test", "refuse"]
    note: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class EntryRuleOut(BaseModel):
    """A rule applied to an entry, with the document it comes from."""

    name: str
    rule: str
    source: str


class SignatureOut(BaseModel):
    """The certificate's signature and whether it verifies now."""

    alg: str
    key_id: str
    value: str
    verified: bool
    problem: str | None


class LinkOut(BaseModel):
    """A certificate on the other end of a re-issue link."""

    number: str
    code: str
    product: str
    quantity: float
    unit: str
    status: str


class TestOut(BaseModel):
    """A rapid test about the lot."""

    __test__ = False

    device: str
    id: str
    item: str
    item_name: str
    verdict: str
    value: float | None
    site: str
    site_name: str
    ts: dt.datetime
    source: str


class CertificateOut(BaseModel):
    """A certificate as the API shows it."""

    number: str
    code: str
    url: str
    status: str
    recalled: bool
    upstream_recalled: bool
    void_reason: str | None
    voided_at: dt.datetime | None
    subject: str
    subject_name: str
    subject_kind: str
    contact: str
    product: str
    quantity: float
    unit: str
    origin: str
    issued_at: dt.datetime
    template: str
    template_version: str
    commitment: str
    basis: list[str]
    # As printed on the certificate's template version (2026 labels for 2026 certificates).
    basis_labels: list[str]
    basis_printed_known: bool = True
    template_source: str = ""
    gtin: str | None
    lot: str | None
    digital_link: str | None
    upstream: list[LinkOut]
    downstream: list[LinkOut]
    tests: list[TestOut]
    proofs: list[ProofOut]
    signature: SignatureOut
    signed: dict[str, object]


class EntryOut(BaseModel):
    """An entry check and its outcome."""

    id: int
    site: str
    status: Literal["admitted", "pending_test", "refused", "external_certificate"]
    flags: list[str]
    certificate: str | None
    certificate_status: str | None
    product: str
    quantity: float
    unit: str
    stall: str | None
    checked_at: dt.datetime
    decided_at: dt.datetime | None
    test_result: TestRef | None
    category: str | None = None
    proofs: list[EntryProofOut] = Field(default_factory=list)
    visual_checked_at: dt.datetime | None = None
    visual_note: str | None = None
    rules: list[EntryRuleOut] = Field(default_factory=list)


class MarketOut(BaseModel):
    """A market that admitted a lot."""

    site: str
    name: str
    district: str
    certificates: list[str]
    entries: int
    first_admitted_at: dt.datetime


class RecallOut(BaseModel):
    """A recall with the lots downstream and the markets that admitted any of them."""

    certificate: str
    reason: str
    recalled_at: dt.datetime
    downstream: list[str]
    markets: list[MarketOut]


class SiteLinkIn(_In):
    """A site whose instruments test for a subject: its own or a commissioned lab."""

    site: Ref
    relation: Literal["own", "commissioned"]


class SiteLinkOut(BaseModel):
    """A subject's linked site."""

    subject: str
    site: str
    relation: str
    created_at: dt.datetime


class TransferIn(_In):
    """The purchaser a lot was handed to."""

    purchaser: Ref


class TransferOut(BaseModel):
    """A lot handed to a purchaser, who may re-issue from it."""

    certificate: str
    purchaser: str
    created_at: dt.datetime
