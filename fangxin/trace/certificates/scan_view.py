"""The consumer scan page's facts in at most three queries: the label, its upstream, its tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    and_,
    bindparam,
    case,
    func,
    inspect,
    literal,
    select,
    union,
)
from sqlalchemy.orm import Session

from fangxin.config import Settings
from fangxin.devices.models import Site
from fangxin.trace.certificates.models import (
    Certificate,
    CertificateLink,
    CertificateScan,
    CertificateTest,
    EntryCheck,
    Recall,
    SigningKey,
    Subject,
)
from fangxin.trace.certificates.proofs import CertificateProof, proof_view, proofs_of
from fangxin.trace.certificates.records import signed_content
from fangxin.trace.certificates.scans import ScanStats, plausible_visitors
from fangxin.trace.certificates.schemas import CertificateOut, LinkOut, MarketOut
from fangxin.trace.certificates.signing import verify_published
from fangxin.trace.certificates.views import Evidence, Lineage, build_view, link_out, tests_of
from fangxin.trace.results.models import RapidTestResult

T = TypeVar("T")
# Re-issue chains are a few links deep; the bound only stops a corrupt cycle.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class ScanPage:
    """Everything the consumer scan page shows."""

    banner: str  # genuine | voided | recalled | tampered
    cert: CertificateOut
    subject: Subject | None
    chain: list[LinkOut]
    recalls: list[tuple[Certificate, Recall]]
    markets: list[MarketOut]
    stats: ScanStats
    now: dt.datetime
    row: Certificate
    # Every change to what it shows is logged in page_changes: not so for a re-issued lot
    # (its upstream's changes are logged against the upstream's own pages).
    covered: bool


def _counted(*columns: Any) -> Any:
    """Return a count over this certificate's scans, as a correlated scalar subquery."""
    return (
        select(*columns).where(CertificateScan.certificate_id == Certificate.id).scalar_subquery()
    )


def _distinct_visitors(signed_in: bool) -> Any:
    # A visitor pseudonym is keyed by its day, so distinct pseudonyms are distinct visitor-days.
    who = CertificateScan.signed_in if signed_in else ~CertificateScan.signed_in
    return _counted(func.count(func.distinct(case((who, CertificateScan.visitor)))))


def _stats() -> list[Any]:
    """Return scans, anonymous and signed-in visitor-days, attributable markets (query 1)."""
    # Correlated by hand: a derived table is not correlated by itself, and uncorrelated it
    # would count every certificate's markets.
    attributable = union(
        select(CertificateScan.site_id)
        .where(
            CertificateScan.certificate_id == Certificate.id,
            CertificateScan.signed_in,
            CertificateScan.site_id != "",
        )
        .correlate(Certificate),
        select(EntryCheck.site_id)
        .where(EntryCheck.certificate_id == Certificate.id)
        .correlate(Certificate),
    ).subquery()
    return [
        _counted(func.coalesce(func.sum(CertificateScan.count), 0)),
        _distinct_visitors(signed_in=False),
        _distinct_visitors(signed_in=True),
        select(func.count()).select_from(attributable).correlate(Certificate).scalar_subquery(),
    ]


def _facts() -> list[Any]:
    """Return the lot's evidence, markets, upstream and key, then its row (read by position)."""
    return [
        RapidTestResult.device_id,
        RapidTestResult.result_id,
        Site.id,
        Site.name,
        Site.district,
        EntryCheck.checked_at,
        select(CertificateLink.parent_id)
        .where(CertificateLink.child_id == Certificate.id)
        .exists(),
        select(CertificateTest.result_id)
        .where(CertificateTest.certificate_id == Certificate.id)
        .exists(),
        SigningKey.public_key,
        *Certificate.__table__.columns,
        # purchasers' proofs are signed too: a lot citing any needs them looked up (last column)
        select(CertificateProof.proof_id)
        .where(CertificateProof.certificate_id == Certificate.id)
        .exists(),
    ]


def _joined(*columns: Any) -> Any:
    """Select columns of a code's certificate and what it joins; a row per admitting entry."""
    return (
        select(*columns)
        .select_from(Certificate)
        .outerjoin(Subject, Subject.id == Certificate.subject_id)
        .outerjoin(SigningKey, SigningKey.key_id == Certificate.key_id)
        .outerjoin(Recall, Recall.certificate_id == Certificate.id)
        .outerjoin(RapidTestResult, RapidTestResult.id == Certificate.test_result_id)
        .outerjoin(
            EntryCheck,
            and_(EntryCheck.certificate_id == Certificate.id, EntryCheck.status == "admitted"),
        )
        .outerjoin(Site, Site.id == EntryCheck.site_id)
        .where(Certificate.code == bindparam("code"))
        .order_by(Site.id, EntryCheck.id)
    )


# Query 1's columns: the scan counts, the subject and recall rows, then the facts (whose
# columns include the certificate's and its key's): read on a connection, no ORM loading.
SUBJECT_COLUMNS = tuple(Subject.__table__.columns)
RECALL_COLUMNS = tuple(Recall.__table__.columns)
CERT_COLUMNS = tuple(Certificate.__table__.columns)
STATS = 4
FACTS = STATS + len(SUBJECT_COLUMNS) + len(RECALL_COLUMNS)  # where the facts start
FACTS_CERT = 9  # where the certificate's columns start in the facts


# Built at import, once per process and before gunicorn forks: building one costs more than
# running it. Built lazily, a worker's first concurrent scans could each build their own, and
# SQLAlchemy then re-keyed the cached compiled form's result columns on every later execution.
_LABEL_QUERY: Executable = _joined(*_stats(), *SUBJECT_COLUMNS, *RECALL_COLUMNS, *_facts())


def _label(conn: Connection, code: str) -> list[Any]:
    """Query 1: the certificate with its subject, key, recall, evidence, markets and scan counts.

    One row per market entry check that admitted it (one row when none did).
    """
    return list(conn.execute(_LABEL_QUERY, {"code": code}).all())


def _rebuilt(model: type[T], columns: tuple[Any, ...], values: Sequence[Any]) -> T:
    """Return a detached instance of model holding one row's values (no session involved)."""
    # Filled as the ORM fills a loaded row, not through the constructor: its attribute events
    # cost 0.1 ms a certificate, a tenth of a first-sight page (the values read back the same).
    instance: T = inspect(model).class_manager.new_instance()
    instance.__dict__.update(zip((c.key for c in columns), values, strict=True))
    return instance


@cache
def _upstream_query() -> Executable:
    """Query 2, built once."""
    up = (
        select(
            CertificateLink.parent_id.label("id"),
            literal(1).label("depth"),
            CertificateLink.quantity_milli.label("qty"),
        )
        .where(CertificateLink.child_id == bindparam("cert_id"))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(CertificateLink.parent_id, up.c.depth + 1, CertificateLink.quantity_milli)
        .join(up, CertificateLink.child_id == up.c.id)
        .where(up.c.depth < MAX_DEPTH)
    )
    return (
        select(Certificate, Recall, up.c.depth, up.c.qty)
        .join(up, up.c.id == Certificate.id)
        .outerjoin(Recall, Recall.certificate_id == Certificate.id)
        .order_by(up.c.depth, Certificate.number)
    )


def _upstream(session: Session, cert_id: int) -> tuple[Lineage, list[Certificate]]:
    """Query 2: every ancestor (nearest first) with its recall and the direct links' quantities."""
    rows = session.execute(_upstream_query(), {"cert_id": cert_id}).all()
    parents: list[tuple[Certificate, int]] = []
    seen: dict[int, tuple[Certificate, Recall | None]] = {}
    for cert, recall, depth, qty in rows:
        if depth == 1:
            parents.append((cert, qty))
        if cert.id != cert_id:
            seen.setdefault(cert.id, (cert, recall))
    recalls = [(c, r) for c, r in seen.values() if r is not None]
    return Lineage(parents, list(seen), recalls), [c for c, _ in seen.values()]


def _markets(rows: list[Any], number: str) -> list[MarketOut]:
    """Fold the admitted entry checks of query 1 into markets, first admission each."""
    markets: dict[str, MarketOut] = {}
    for row in rows:
        site_id, name, district, checked_at = row[FACTS + 2 : FACTS + 6]
        if site_id is None:
            continue
        market = markets.get(site_id)
        if market is None:
            markets[site_id] = MarketOut(
                site=site_id,
                name=name,
                district=district,
                certificates=[number],
                entries=1,
                first_admitted_at=checked_at,
            )
        else:
            market.entries += 1
            market.first_admitted_at = min(market.first_admitted_at, checked_at)
    return list(markets.values())


def scan_page(
    reader: Engine,
    session: Callable[[], Session],
    code: str,
    settings: Settings,
    now: dt.datetime,
) -> ScanPage | None:
    """Assemble the scan page of a code, or None when no certificate has it (≤ 3 queries).

    Query 1 runs on a connection of reader; the rare lots with an upstream, tests or proofs
    read those through session(), opened only then.
    """
    with reader.connect() as conn:
        rows = _label(conn, code)
    if not rows:
        return None
    first, fp = rows[0], rows[0][FACTS:]
    scans, anonymous, visitors, markets = first[:STATS]
    subject_row = first[STATS : STATS + len(SUBJECT_COLUMNS)]
    recall_row = first[STATS + len(SUBJECT_COLUMNS) : FACTS]
    subject = (
        _rebuilt(Subject, SUBJECT_COLUMNS, subject_row) if subject_row[0] is not None else None
    )
    recall = _rebuilt(Recall, RECALL_COLUMNS, recall_row) if recall_row[0] is not None else None
    # columns[0] is each table's primary key: None when the outer join found no row
    cert = _rebuilt(Certificate, CERT_COLUMNS, fp[FACTS_CERT : FACTS_CERT + len(CERT_COLUMNS)])
    device, result, has_parents, tested, public_key = fp[0], fp[1], fp[6], fp[7], fp[8]
    if has_parents:
        facts, chain = _upstream(session(), cert.id)
    else:
        facts, chain = Lineage([], [], []), []
    own = [(cert, recall)] if recall is not None else []
    facts = Lineage(facts.parents, facts.ancestors, own + facts.recalls)
    evidence = (device, result) if device is not None else None
    if cert.test_result_id is not None and evidence is None:
        evidence = ("?", "?")
    proofs = proofs_of(session(), cert.id) if fp[-1] else []
    content = signed_content(cert, [(c.number, q) for c, q in facts.parents], evidence, proofs)
    # The key came with query 1 (its stored value; None when no such key is published).
    problem = verify_published(cert.key_id, public_key, content, cert.signature)
    view = build_view(
        cert,
        settings,
        Evidence(
            content=content,
            problem=problem,
            subject_kind=subject.kind if subject else cert.template,
            facts=facts,
            downstream=[],  # the page does not list lots re-issued from this one
            # a lot with no test of its own and no upstream has none to look up
            tests=tests_of(session(), [cert.id, *facts.ancestors]) if tested or has_parents else [],
            proofs=[proof_view(p) for p in proofs],
        ),
    )
    if problem is not None:
        banner = "tampered"
    elif facts.recalls:
        banner = "recalled"
    elif cert.status == "voided":
        banner = "voided"
    else:
        banner = "genuine"
    return ScanPage(
        banner=banner,
        cert=view,
        subject=subject,
        chain=[link_out(c, c.quantity_milli) for c in chain],
        recalls=facts.recalls,
        markets=_markets(rows, cert.number),
        stats=ScanStats(
            int(scans or 0),
            int(visitors or 0),
            int(markets or 0),
            plausible_visitors(cert),
            int(anonymous or 0),
        ),
        now=now,
        row=cert,
        covered=not has_parents,
    )
