"""Storing rapid-test results from either door: judge, dedupe, link retests, open follow-ups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.contract.payloads import ResultPayload
from fangxin.db.bulk import insert_ignore
from fangxin.trace.results.catalogue import Catalogue
from fangxin.trace.results.followup import after_results
from fangxin.trace.results.models import RapidTestResult

_R = RapidTestResult
KEY = ("device_id", "result_id")


@dataclass(slots=True)
class Pending:
    """A judged result waiting to be written, with a reference back to where it came from."""

    row: dict[str, Any]
    ref: Any
    retest_of: str | None = None


def result_row(
    site_id: str,
    device_id: str,
    received_at: dt.datetime,
    result: ResultPayload,
    catalogue: Catalogue,
    source: str,
) -> dict[str, Any]:
    """Judge a result against the catalogue and return its row (VerdictError if it cannot)."""
    sample = result.sample
    judged = catalogue.judge(
        result.item,
        sample.category,
        sample.name,
        result.value,
        result.unit,
        result.verdict,
        result.reagent_lot,
    )
    return {
        "device_id": device_id,
        "site_id": site_id,
        "result_id": result.id,
        "ts": result.ts,
        "received_at": received_at,
        "item_code": result.item,
        "value": result.value,
        "unit": result.unit,
        "sample_name": sample.name,
        "sample_category": sample.category,
        "stall": sample.stall,
        "certificate": sample.certificate,
        "tester": result.tester,
        "reagent_lot": result.reagent_lot,
        "verdict": judged.verdict,
        "device_verdict": result.verdict,
        "verdict_mismatch": result.verdict is not None and result.verdict != judged.verdict,
        "source": source,
        "tested_by": result.source,
        "threshold": judged.threshold,
        "comparator": judged.comparator,
        "false_positive_risk": judged.false_positive_risk,
        "parent_id": None,
        "extra": dict(result.extra) if result.extra else None,
    }


def split_stored(session: Session, pending: Sequence[Pending]) -> tuple[list[Pending], list[Any]]:
    """Separate results not stored yet from those stored already (by either door).

    Returns the new ones and the references of the duplicates (also duplicates within the list).
    """
    if not pending:
        return [], []
    keys = {(p.row["device_id"], p.row["result_id"]) for p in pending}
    # Two IN lists (the unique index serves them) and an exact check here: faster than a
    # row-value IN on both engines.
    stored = session.execute(
        select(_R.device_id, _R.result_id).where(
            _R.device_id.in_({k[0] for k in keys}), _R.result_id.in_({k[1] for k in keys})
        )
    )
    fresh, duplicates = [], []
    seen = {(device, rid) for device, rid in stored if (device, rid) in keys}
    for p in pending:
        key = (p.row["device_id"], p.row["result_id"])
        if key in seen:
            duplicates.append(p.ref)
        else:
            seen.add(key)
            fresh.append(p)
    return fresh, duplicates


def _link_retests(
    session: Session, retests: Sequence[Pending], on_error: Callable[[Any, str], None]
) -> list[Pending]:
    """Point each retest at the result it names; refuse those that name none or several."""
    wanted_sites = {p.row["site_id"] for p in retests}
    wanted_ids = {p.retest_of for p in retests}
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for rid, site, device, result_id in session.execute(
        select(_R.id, _R.site_id, _R.device_id, _R.result_id).where(
            _R.site_id.in_(wanted_sites), _R.result_id.in_(wanted_ids)
        )
    ):
        found.setdefault((site, result_id), []).append((rid, device))
    linked = []
    for p in retests:
        row, name = p.row, p.retest_of
        candidates = found.get((row["site_id"], name or ""), [])
        same_device = [c for c in candidates if c[1] == row["device_id"]]
        chosen = same_device or candidates
        if name == row["result_id"] and same_device:
            on_error(p.ref, f"{row['result_id']}: retest_of names the result itself")
        elif not chosen:
            on_error(p.ref, f"{row['result_id']}: retest_of {name!r} is no result of this site")
        elif len(chosen) > 1:
            devices = ", ".join(sorted(c[1] for c in chosen))
            on_error(p.ref, f"{row['result_id']}: retest_of {name!r} is ambiguous ({devices})")
        else:
            row["parent_id"] = chosen[0][0]
            linked.append(p)
    return linked


def write_results(
    session: Session,
    pending: Sequence[Pending],
    on_error: Callable[[Any, str], None],
    now: dt.datetime,
) -> list[Pending]:
    """Insert results (duplicates skipped), link retests, open and advance follow-ups.

    Originals go first so that a retest may name a result of the same batch. Returns what was
    written (redeliveries included: the insert skips them, the follow-ups are idempotent).
    """
    originals = [p for p in pending if p.retest_of is None]
    insert_ignore(session, _R.__table__, [p.row for p in originals], KEY)
    retests = [p for p in pending if p.retest_of is not None]
    linked = _link_retests(session, retests, on_error) if retests else []
    insert_ignore(session, _R.__table__, [p.row for p in linked], KEY)
    written = originals + linked
    after_results(session, [p.row for p in written], now)
    return written
