"""EPCIS 2.0 JSON-LD export of traceability events (CBV 2.0 vocabulary).

Issuance is a commissioning ObjectEvent, a purchaser's re-issue a TransformationEvent, voiding a
decommissioning ObjectEvent, entry checks receiving events, rapid tests inspecting events with a
sensor report, and a recall an event with the recalled disposition (set persistently).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.trace.certificates.digital_link import build
from fangxin.trace.certificates.models import (
    Certificate,
    CertificateLink,
    CertificateTest,
    EntryCheck,
    Recall,
)
from fangxin.trace.certificates.recalls import lineage
from fangxin.trace.certificates.records import format_quantity
from fangxin.trace.results.models import RapidTestResult

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# UN/CEFACT Rec 20 (and Rec 21 "X" package codes) for our units, with a factor to that unit.
UOM = {"kg": ("KGM", 1.0), "g": ("GRM", 1.0), "t": ("TNE", 1.0), "斤": ("KGM", 0.5)}
PACKAGES = {"箱": "XBX", "盒": "XBX", "袋": "XBG", "筐": "XBK"}
ENTRY_DISPOSITION = {
    "admitted": "sellable_accessible",
    "pending_test": "non_sellable_other",
    # Awaiting the visual check of a certificate or proof fangxin cannot verify.
    "external_certificate": "non_sellable_other",
    "refused": "non_conformant",
}
TEST_DISPOSITION = {"negative": "conformant", "positive": "non_conformant"}


@dataclass(frozen=True, slots=True)
class Ids:
    """URIs of our things under the public base URL."""

    base: str

    def path(self, *parts: str) -> str:
        """Return a URI under base/id/."""
        return "/".join([self.base, "id", *(quote(p, safe="") for p in parts)])

    def lot(self, cert: Certificate) -> str:
        """Return a certificate lot's class identifier (a Digital Link when it has a GTIN)."""
        if cert.gtin and cert.lot:
            return build(self.base, cert.gtin, cert.lot)
        return self.path("certificate", cert.number)

    def event(self, kind: str, key: object) -> str:
        """Return a stable event id."""
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.base}/event/{kind}/{key}')}"


def quantity(ids: Ids, cert: Certificate, milli: int | None = None) -> dict[str, Any]:
    """Return a quantity element for (part of) a lot."""
    amount = float(format_quantity(cert.quantity_milli if milli is None else milli))
    uom, factor = UOM.get(cert.unit, (PACKAGES.get(cert.unit, "H87"), 1.0))
    return {"epcClass": ids.lot(cert), "quantity": amount * factor, "uom": uom}


def _when(ts: dt.datetime, tz: ZoneInfo) -> dict[str, str]:
    local = ts.astimezone(tz)
    offset = local.strftime("%z")
    return {
        "eventTime": local.isoformat(timespec="seconds"),
        "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}",
    }


def _issued(
    ids: Ids, cert: Certificate, parents: list[tuple[Certificate, int]], tz: ZoneInfo
) -> dict[str, Any]:
    common = {
        **_when(cert.issued_at, tz),
        "eventID": ids.event("issue", cert.number),
        "certificationInfo": f"{ids.base}/c/{cert.code}",
        "bizLocation": {"id": ids.path("subject", cert.subject_id)},
        "bizTransactionList": [{"type": "cert", "bizTransaction": f"{ids.base}/c/{cert.code}"}],
        "ilmd": {
            "fx:product": cert.product,
            "fx:origin": cert.origin,
            "fx:certificateNumber": cert.number,
            "fx:basis": list(cert.basis),
        },
    }
    if parents:
        return {
            "type": "TransformationEvent",
            **common,
            "bizStep": "repackaging",
            "inputQuantityList": [quantity(ids, p, drawn) for p, drawn in parents],
            "outputQuantityList": [quantity(ids, cert)],
        }
    return {
        "type": "ObjectEvent",
        **common,
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [quantity(ids, cert)],
    }


def _entry(ids: Ids, entry: EntryCheck, cert: Certificate | None, tz: ZoneInfo) -> dict[str, Any]:
    site = ids.path("site", entry.site_id)
    lot = {"epcClass": ids.path("entry", str(entry.id))}
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        **_when(entry.checked_at, tz),
        "eventID": ids.event("entry", entry.id),
        "action": "OBSERVE",
        "bizStep": "receiving",
        "disposition": ENTRY_DISPOSITION[entry.status],
        "quantityList": [quantity(ids, cert, entry.quantity_milli) if cert else lot],
        "readPoint": {"id": site},
        "bizLocation": {"id": site},
        "destinationList": [{"type": "location", "destination": site}],
    }
    if cert is not None:
        event["sourceList"] = [
            {"type": "owning_party", "source": ids.path("subject", cert.subject_id)}
        ]
        event["bizTransactionList"] = [
            {"type": "cert", "bizTransaction": f"{ids.base}/c/{cert.code}"}
        ]
    return event


def _test(ids: Ids, result: RapidTestResult, lot: str, tz: ZoneInfo) -> dict[str, Any]:
    item = ids.path("test-item", result.item_code)
    report: dict[str, Any] = {"type": "Dimensionless", "chemicalSubstance": item}
    if result.value is not None:
        report.update(value=result.value, uom="P1" if result.unit == "%" else "59")
    report["stringValue"] = result.verdict
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        **_when(result.ts, tz),
        "eventID": ids.event("test", f"{result.device_id}/{result.result_id}"),
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "quantityList": [{"epcClass": lot}],
        "readPoint": {"id": ids.path("site", result.site_id)},
        "bizTransactionList": [
            {
                "type": "testres",
                "bizTransaction": ids.path("result", result.device_id, result.result_id),
            }
        ],
        "sensorElementList": [
            {
                "sensorMetadata": {
                    "time": result.ts.astimezone(tz).isoformat(timespec="seconds"),
                    "deviceID": ids.path("device", result.device_id),
                    "bizRules": item,
                },
                "sensorReport": [report],
            }
        ],
    }
    if result.verdict in TEST_DISPOSITION:
        event["disposition"] = TEST_DISPOSITION[result.verdict]
    return event


def _family(session: Session, number: str) -> list[int]:
    cert = session.scalar(select(Certificate).where(Certificate.number == number))
    if cert is None:
        return []
    return [cert.id, *lineage(session, cert.id, "up"), *lineage(session, cert.id, "down")]


def events(
    session: Session, base: str, tz: str, certificate: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    """Return the traceability events, oldest first, optionally of one lot's family or subject."""
    ids, zone = Ids(base.rstrip("/")), ZoneInfo(tz)
    stmt = select(Certificate)
    if certificate is not None:
        stmt = stmt.where(Certificate.id.in_(_family(session, certificate)))
    if subject is not None:
        stmt = stmt.where(Certificate.subject_id == subject)
    certs = {c.id: c for c in session.scalars(stmt)}
    links: dict[int, list[tuple[Certificate, int]]] = {}
    for link in session.scalars(select(CertificateLink).where(CertificateLink.child_id.in_(certs))):
        parent = certs.get(link.parent_id) or session.get(Certificate, link.parent_id)
        if parent is not None:
            links.setdefault(link.child_id, []).append((parent, link.quantity_milli))
    out = []
    for cert in certs.values():
        out.append(_issued(ids, cert, links.get(cert.id, []), zone))
        if cert.voided_at is not None:
            out.append(
                {
                    "type": "ObjectEvent",
                    **_when(cert.voided_at, zone),
                    "eventID": ids.event("void", cert.number),
                    "action": "DELETE",
                    "bizStep": "decommissioning",
                    "disposition": "inactive",
                    "quantityList": [quantity(ids, cert)],
                }
            )
    entry_stmt = select(EntryCheck).where(EntryCheck.certificate_id.in_(certs))
    if certificate is None and subject is None:
        entry_stmt = select(EntryCheck)
    for entry in session.scalars(entry_stmt):
        out.append(_entry(ids, entry, certs.get(entry.certificate_id or -1), zone))
        if entry.certificate_id is None and entry.test_result_id is not None:
            result = session.get(RapidTestResult, entry.test_result_id)
            if result is not None:
                out.append(_test(ids, result, ids.path("entry", str(entry.id)), zone))
    tests = session.execute(
        select(RapidTestResult, CertificateTest.certificate_id)
        .join(CertificateTest, CertificateTest.result_id == RapidTestResult.id)
        .where(CertificateTest.certificate_id.in_(certs))
    )
    for result, cert_id in tests:
        out.append(_test(ids, result, ids.lot(certs[cert_id]), zone))
    for row in session.scalars(select(Recall).where(Recall.certificate_id.in_(certs))):
        cert = certs[row.certificate_id]
        affected = [
            cert,
            *(c for i in lineage(session, cert.id, "down") if (c := session.get(Certificate, i))),
        ]
        out.append(
            {
                "type": "ObjectEvent",
                **_when(row.recalled_at, zone),
                "eventID": ids.event("recall", cert.number),
                "action": "OBSERVE",
                "bizStep": "holding",
                "disposition": "recalled",
                "persistentDisposition": {"set": ["recalled"]},
                "quantityList": [quantity(ids, c) for c in affected],
            }
        )
    return sorted(out, key=lambda e: (e["eventTime"], e["eventID"]))


def document(events_: list[dict[str, Any]], base: str, now: dt.datetime) -> dict[str, Any]:
    """Wrap events in an EPCIS 2.0 JSON-LD document."""
    return {
        "@context": [CONTEXT, {"fx": f"{base.rstrip('/')}/ns/fangxin#"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": events_},
    }
