"""Recalls: a regulator recalls a lot; lots re-issued from it are flagged; where it went."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.trace.certificates.models import Certificate, CertificateLink, EntryCheck, Recall
from fangxin.trace.certificates.schemas import MarketOut, RecallOut


class RecallConflict(ValueError):
    """The certificate is already recalled."""


def lineage(session: Session, cert_id: int, direction: str) -> list[int]:
    """Return the ids of every certificate downstream ("down") or upstream ("up"), nearest first."""
    near, far = (
        (CertificateLink.parent_id, CertificateLink.child_id)
        if direction == "down"
        else (CertificateLink.child_id, CertificateLink.parent_id)
    )
    seen: dict[int, None] = {}
    frontier = [cert_id]
    while frontier:
        rows = session.scalars(select(far).where(near.in_(frontier))).all()
        frontier = [r for r in rows if r not in seen and r != cert_id]
        seen.update(dict.fromkeys(frontier))
    return list(seen)


def recalled_ids(session: Session, ids: Iterable[int]) -> set[int]:
    """Return which of these certificates are recalled."""
    wanted = list(ids)
    if not wanted:
        return set()
    return set(
        session.scalars(select(Recall.certificate_id).where(Recall.certificate_id.in_(wanted)))
    )


def recalls_affecting(
    session: Session, cert: Certificate, ancestors: list[int] | None = None
) -> list[tuple[Certificate, Recall]]:
    """Return the recalls on this certificate and on any upstream one, this one first."""
    if ancestors is None:
        ancestors = lineage(session, cert.id, "up")
    ids = [cert.id, *ancestors]
    rows = session.execute(
        select(Certificate, Recall)
        .join(Recall, Recall.certificate_id == Certificate.id)
        .where(Certificate.id.in_(ids))
    ).all()
    order = {cid: i for i, cid in enumerate(ids)}
    return sorted(((c, r) for c, r in rows), key=lambda pair: order[pair[0].id])


def recall(
    session: Session, cert: Certificate, reason: str, now: dt.datetime, key_id: int | None
) -> Recall:
    """Recall a certificate's lot (the caller commits)."""
    if session.scalar(select(Recall).where(Recall.certificate_id == cert.id)) is not None:
        raise RecallConflict(f"{cert.number} is already recalled")
    row = Recall(certificate_id=cert.id, reason=reason, recalled_at=now, key_id=key_id)
    session.add(row)
    session.flush()
    return row


def admitting_markets(session: Session, cert_ids: list[int]) -> list[MarketOut]:
    """Return the markets whose entry checks admitted any of these lots."""
    if not cert_ids:
        return []
    rows = session.execute(
        select(
            Site.id,
            Site.name,
            Site.district,
            Certificate.number,
            func.count(EntryCheck.id),
            func.min(EntryCheck.checked_at),
        )
        .join(EntryCheck, EntryCheck.site_id == Site.id)
        .join(Certificate, Certificate.id == EntryCheck.certificate_id)
        .where(EntryCheck.certificate_id.in_(cert_ids), EntryCheck.status == "admitted")
        .group_by(Site.id, Site.name, Site.district, Certificate.number)
        .order_by(Site.id, Certificate.number)
    ).all()
    markets: dict[str, MarketOut] = {}
    for site_id, name, district, number, entries, first in rows:
        market = markets.get(site_id)
        if market is None:
            markets[site_id] = MarketOut(
                site=site_id,
                name=name,
                district=district,
                certificates=[number],
                entries=entries,
                first_admitted_at=first,
            )
        else:
            market.certificates.append(number)
            market.entries += entries
            market.first_admitted_at = min(market.first_admitted_at, first)
    return list(markets.values())


def recall_view(session: Session, cert: Certificate, row: Recall) -> RecallOut:
    """Describe a recall: the lots downstream and the markets that admitted any of them."""
    down = lineage(session, cert.id, "down")
    numbers = (
        session.scalars(select(Certificate.number).where(Certificate.id.in_(down))).all()
        if down
        else []
    )
    return RecallOut(
        certificate=cert.number,
        reason=row.reason,
        recalled_at=row.recalled_at,
        downstream=sorted(numbers),
        markets=admitting_markets(session, [cert.id, *down]),
    )
