"""Market entry checks (入场查验): certificate checks, waiting for a rapid test, the day's rate."""

from __future__ import annotations

import datetime as dt
import logging
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Executable, and_, bindparam, case, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from fangxin.db.bulk import insert_ignore
from fangxin.devices.models import Site
from fangxin.devices.status import StatusContext
from fangxin.trace.certificates.digital_link import DigitalLinkError, parse
from fangxin.trace.certificates.entry_proofs import add_proofs, check_proofs
from fangxin.trace.certificates.entry_rules import fit
from fangxin.trace.certificates.models import (
    ENTRY_STATUSES,
    Certificate,
    CertificateTest,
    EntryCheck,
)
from fangxin.trace.certificates.recalls import recalls_affecting
from fangxin.trace.certificates.records import find, normalise_unit, to_milli, verify_certificate
from fangxin.trace.certificates.scans import copy_suspected
from fangxin.trace.certificates.schemas import EntryIn
from fangxin.trace.results.models import RapidTestResult

# A test may be stamped a little before the check (device clocks); it counts for a day after.
TEST_BEFORE = dt.timedelta(minutes=10)
TEST_WITHIN = dt.timedelta(hours=24)
MISMATCH_FLAGS = frozenset(
    {"product_mismatch", "unit_mismatch", "quantity_exceeds_certificate", "copied_code_suspected"}
)

_LOGGER = logging.getLogger(__name__)
# Made once (an alias made per call costs more than the query it is used in).
_OTHER = aliased(EntryCheck, name="other")


def find_scanned(session: Session, text: str) -> Certificate | None:
    """Find a certificate from what a scanner read: number, code, scan URL or Digital Link."""
    text = text.strip()
    if "://" not in text:
        return find(session, text)
    try:
        link = parse(text)
    except DigitalLinkError:
        try:
            path = urlsplit(text).path
        except ValueError:  # not even a URL: nothing to find
            return None
        return find(session, path.rsplit("/", 1)[-1]) if "/c/" in path else None
    return session.scalar(
        select(Certificate).where(Certificate.gtin == link.gtin, Certificate.lot == link.lot)
    )


def _certificate_flags(
    session: Session, cert: Certificate, data: EntryIn, unit: str, now: dt.datetime
) -> list[str]:
    if cert.status == "voided":
        return ["certificate_voided"]
    if recalls_affecting(session, cert):
        return ["certificate_recalled"]
    if verify_certificate(session, cert) is not None:
        return ["signature_invalid"]
    flags = []
    if cert.product != data.product:
        flags.append("product_mismatch")
    if cert.unit != unit:
        flags.append("unit_mismatch")
    else:
        admitted = session.scalar(
            select(func.coalesce(func.sum(EntryCheck.quantity_milli), 0)).where(
                EntryCheck.certificate_id == cert.id, EntryCheck.status == "admitted"
            )
        )
        # Lots admitted elsewhere on the same certificate count too: a copied code shows here.
        if int(admitted or 0) + to_milli(data.quantity) > cert.quantity_milli:
            flags.append("quantity_exceeds_certificate")
    if copy_suspected(session, cert, now):
        flags.append("copied_code_suspected")
    return flags


def _decide(
    session: Session, cert: Certificate | None, data: EntryIn, unit: str, now: dt.datetime
) -> tuple[list[str], str]:
    proof = ["other_proof"] if data.proofs else []
    if data.certificate is None:
        # Other proofs are checked by eye like a certificate fangxin does not know.
        return (proof, "external_certificate") if proof else (["no_certificate"], "pending_test")
    if cert is None:  # printed, handwritten or another system's: not refused (2026 rules)
        return ["certificate_unknown", *proof], "external_certificate"
    flags = _certificate_flags(session, cert, data, unit, now)
    if {"certificate_voided", "certificate_recalled", "signature_invalid"} & set(flags):
        return flags, "refused"
    return [*flags, *proof], "pending_test" if MISMATCH_FLAGS & set(flags) else "admitted"


def check_entry(
    session: Session, site: Site, data: EntryIn, now: dt.datetime, key_id: int | None
) -> EntryCheck:
    """Record a lot's entry check: admitted, pending_test, external_certificate or refused."""
    unit = normalise_unit(data.unit)
    proofs = check_proofs(data.proofs)  # a bad photo fails before anything is stored
    cert = find_scanned(session, data.certificate) if data.certificate is not None else None
    flags, status = _decide(session, cert, data, unit, now)
    entry = EntryCheck(
        site_id=site.id,
        certificate_id=cert.id if cert else None,
        certificate_ref=data.certificate,
        product=data.product,
        quantity_milli=to_milli(data.quantity),
        unit=unit,
        stall=data.stall,
        vendor=data.vendor,
        category=data.category,
        status=status,
        flags=flags,
        checked_at=now,
        decided_at=now if status in ("admitted", "refused") else None,
        key_id=key_id,
    )
    session.add(entry)
    session.flush()
    add_proofs(session, entry.id, proofs, now)
    return entry


def _pending_for(session: Session, row: dict[str, Any], result_id: int) -> EntryCheck | None:
    ts: dt.datetime = row["ts"]
    stmt = (
        select(EntryCheck)
        .where(
            EntryCheck.site_id == row["site_id"],
            EntryCheck.status == "pending_test",
            EntryCheck.product == row["sample_name"],
            EntryCheck.test_result_id.is_(None),
            EntryCheck.checked_at >= ts - TEST_WITHIN,
            EntryCheck.checked_at <= ts + TEST_BEFORE,
        )
        .order_by(EntryCheck.checked_at, EntryCheck.id)
        .with_for_update()
    )
    if row.get("stall"):
        stmt = stmt.where((EntryCheck.stall.is_(None)) | (EntryCheck.stall == row["stall"]))
    candidates = list(session.scalars(stmt))
    # A result naming the lot's certificate (or entry reference) picks that lot first.
    named = [
        e for e in candidates if row.get("certificate") and e.certificate_ref == row["certificate"]
    ]
    chosen = named or candidates
    return chosen[0] if chosen else None


def on_results(session: Session, rows: list[dict[str, Any]]) -> None:
    """Pipeline listener: link tests to certificates and decide lots waiting for a test."""
    sites = {r["site_id"] for r in rows}
    waiting = set(
        session.scalars(
            select(EntryCheck.site_id)
            .where(EntryCheck.status == "pending_test", EntryCheck.site_id.in_(sites))
            .distinct()
        )
    )
    # Most results name no certificate and meet no waiting lot: they cost nothing more here.
    rows = [r for r in rows if r.get("certificate") or r["site_id"] in waiting]
    if not rows:
        return
    keys = [(r["device_id"], r["result_id"]) for r in rows]
    ids = {
        (d, r): i
        for i, d, r in session.execute(
            select(RapidTestResult.id, RapidTestResult.device_id, RapidTestResult.result_id).where(
                tuple_(RapidTestResult.device_id, RapidTestResult.result_id).in_(keys)
            )
        )
    }
    links: list[dict[str, Any]] = []
    for row in rows:
        result_id = ids.get((row["device_id"], row["result_id"]))
        if result_id is None:
            continue
        if row.get("certificate"):
            cert = find_scanned(session, row["certificate"])
            if cert is not None and _checked_at(session, cert.id, row["site_id"]):
                links.append({"certificate_id": cert.id, "result_id": result_id, "source": "lab"})
            else:
                _LOGGER.warning(
                    "Result %s of %s names certificate %s, never presented at site %s: not linked",
                    row["result_id"],
                    row["device_id"],
                    row["certificate"][:64],
                    row["site_id"],
                )
        if row["verdict"] == "suspect" or row["site_id"] not in waiting:
            continue  # a suspect result calls for a retest, not a decision
        done = session.scalar(select(EntryCheck.id).where(EntryCheck.test_result_id == result_id))
        entry = None if done is not None else _pending_for(session, row, result_id)
        if entry is None:
            continue
        negative = row["verdict"] == "negative"
        rule = fit(entry.category or row.get("sample_category"), row["item_code"])
        if negative and not rule.fits:
            # Only an item that fits the food's category admits it: the lot waits on.
            if "test_item_unfit" not in entry.flags:
                entry.flags = [*entry.flags, "test_item_unfit"]
            entry.test_rule = rule.record()
            session.flush()
            continue
        entry.test_rule = rule.record()
        entry.status = "admitted" if negative else "refused"
        entry.flags = [*entry.flags, "tested_negative" if negative else "tested_positive"]
        entry.test_result_id = result_id
        entry.decided_at = row.get("received_at") or row["ts"]
        if entry.certificate_id is not None:
            links.append(
                {"certificate_id": entry.certificate_id, "result_id": result_id, "source": "entry"}
            )
        session.flush()
    insert_ignore(session, CertificateTest.__table__, links, ("certificate_id", "result_id"))


def _checked_at(session: Session, certificate_id: int, site_id: str) -> bool:
    """Tell whether the certificate's lot came through an entry check at this site."""
    found = session.scalar(
        select(EntryCheck.id)
        .where(EntryCheck.certificate_id == certificate_id, EntryCheck.site_id == site_id)
        .limit(1)
    )
    return found is not None


@cache
def _status_query() -> Executable:
    """Build once the status section's one query (building it cost more than running it)."""
    site: Any = bindparam("site")
    start: Any = bindparam("start")
    end: Any = bindparam("end")
    today = and_(EntryCheck.site_id == site, EntryCheck.checked_at >= start)
    today = and_(today, EntryCheck.checked_at < end)
    pending = EntryCheck.status == "pending_test"
    visual = EntryCheck.status == "external_certificate"
    on_cert = and_(today, EntryCheck.status == "admitted", EntryCheck.test_result_id.is_(None))
    return (
        select(
            EntryCheck.status,
            func.sum(case((today, 1), else_=0)),
            func.sum(case((on_cert, 1), else_=0)),
            func.sum(case((pending, 1), else_=0)),
            func.sum(case((visual, 1), else_=0)),
            # an alias, so the count is not correlated with the grouped rows
            select(func.count(func.distinct(_OTHER.certificate_id)))
            .where(_OTHER.site_id == site, _OTHER.checked_at >= start, _OTHER.checked_at < end)
            .scalar_subquery(),
        )
        .where(EntryCheck.site_id == site, or_(today, pending, visual))
        .group_by(EntryCheck.status)
    )


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about today's entry checks.

    entry_check_rate: lots decided today (admitted on a certificate or a test, or refused) over
    lots checked; certificate_rate: lots admitted on a matching certificate over lots checked.
    """
    params = {"site": ctx.site.id, "start": ctx.day_start, "end": ctx.day_end}
    rows = ctx.session.execute(_status_query(), params).all()
    counts = dict.fromkeys(ENTRY_STATUSES, 0)
    on_certificate = seen = 0
    waiting = dict.fromkeys(("pending_test", "external_certificate"), 0)
    for status, n, certified, waits, visual_waits, distinct in rows:
        if n:
            counts[status] = int(n)
        on_certificate += int(certified or 0)
        waiting["pending_test"] += int(waits or 0)
        waiting["external_certificate"] += int(visual_waits or 0)
        seen = int(distinct or 0)
    lots = sum(counts.values())
    return {
        "entry_checks_today": {
            **counts,
            "lots": lots,
            "admitted_on_certificate": on_certificate,
            "entry_check_rate": round(
                (lots - counts["pending_test"] - counts["external_certificate"]) / lots, 4
            )
            if lots
            else None,
            "certificate_rate": round(on_certificate / lots, 4) if lots else None,
            "certificates_seen": seen,
        },
        "entry_checks_waiting_for_test": waiting["pending_test"],
        "entry_checks_waiting_for_visual_check": waiting["external_certificate"],
    }
