"""The steps people take on a positive's follow-up, each checked against the state and the clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.trace.certificates.upstream import issuer_of, lookup_certificate
from fangxin.trace.notify.webhooks import enqueue
from fangxin.trace.results.cases import case_payload
from fangxin.trace.results.followup import IllegalTransition, event, notify, refusal
from fangxin.trace.results.followup_models import Followup, FollowupAlert
from fangxin.trace.results.followup_rules import ACTIONS, DISPOSAL_METHODS, REGULATOR_ACTIONS
from fangxin.trace.results.schemas import ActionIn

CASE_UPSTREAM = "case.upstream"


class FollowupError(ValueError):
    """An action that lacks what it needs (e.g. no certificate to trace)."""


class NotYourStep(PermissionError):
    """An action that only a regulator may take."""


def _lab_result(followup: Followup, data: ActionIn, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    followup.lab_result = data.lab_result
    followup.lab_detail = {"lab": data.lab_name, "report_no": data.report_no, "method": data.method}
    detail = {"lab_result": data.lab_result, "lab": data.lab_name, "report_no": data.report_no}
    detail["method"] = data.method
    if data.lab_result == "negative":
        followup.closed_at = now
        return "cleared", detail
    followup.confirmed_at = now
    # A banned substance stays sealed until it is disposed of: the referral comes first.
    return "confirmed", detail


def _dispose(followup: Followup, data: ActionIn) -> dict[str, Any]:
    assert data.disposal_method is not None
    followup.disposal = data.disposal_method
    followup.disposal_detail = {
        "method": data.disposal_method,
        "method_zh": DISPOSAL_METHODS[data.disposal_method],
        "witness": data.witness,
        "record_no": data.record_no,
    }
    return dict(followup.disposal_detail)


def _trace_upstream(
    session: Session, followup: Followup, data: ActionIn, actor: str, now: dt.datetime
) -> dict[str, Any]:
    number = data.certificate or followup.certificate
    if not number:
        raise FollowupError("no 合格证 number on the result: give `certificate`")
    found = lookup_certificate(session, number)
    followup.certificate = number
    followup.upstream_issuer = data.issuer or issuer_of(found) or followup.upstream_issuer
    origin = data.origin or (found or {}).get("origin")
    if not origin:
        raise FollowupError(
            "no 产地 known for this 合格证: give `origin` to notify its 农业农村部门"
        )
    department = f"{origin}农业农村部门"
    site = session.get(Site, followup.site_id)
    assert site is not None
    alert = FollowupAlert(
        followup_id=followup.id,
        site_id=site.id,
        district=site.district,
        kind="agri_notice",
        title=f"通报产地农业农村部门：{origin}",
        body=f"合格证 {number}，开具者 {followup.upstream_issuer or '未知'}；请{department}核查",
        created_at=now,
    )
    session.add(alert)
    session.flush()
    payload = case_payload(session, followup) | {"origin": origin, "department": department}
    key = f"followup:{followup.id}:upstream:{number}"
    sent = enqueue(session, CASE_UPSTREAM, key, payload, site.district, now)
    followup.agri_notice = {"origin": origin, "department": department, "at": now.isoformat()}
    followup.agri_notice |= {"alert": alert.id, "webhooks": sent, "by": actor}
    return {
        "certificate": number,
        "issuer": followup.upstream_issuer,
        "register": found,
        "agri_notice": followup.agri_notice,
    }


def apply_action(
    session: Session,
    followup_id: int,
    data: ActionIn,
    actor: str,
    now: dt.datetime,
    *,
    regulator: bool,
) -> Followup:
    """Take one step of the workflow, or raise IllegalTransition / FollowupError / NotYourStep."""
    if data.action in REGULATOR_ACTIONS and not regulator:
        raise NotYourStep(f"{data.action} is the regulator's step, with the lab report attached")
    followup = session.get(Followup, followup_id, with_for_update=True, populate_existing=True)
    if followup is None:
        raise LookupError(f"follow-up {followup_id} does not exist")
    why = refusal(followup, data.action, now)
    if why is not None:
        raise IllegalTransition(followup, data.action, now, why)
    _, target = ACTIONS[data.action]
    detail: dict[str, Any] = {k: v for k, v in (("note", data.note),) if v}
    if data.action == "lab_result":
        target, more = _lab_result(followup, data, now)
        detail |= more
    elif data.action == "dispose":
        detail |= _dispose(followup, data)
    elif data.action == "report":
        followup.reported_at = now
        followup.report_detail = {"office": data.office, "report_no": data.report_no}
        detail |= followup.report_detail
    elif data.action == "refer":
        followup.referral = {"agency": data.agency, "referral_no": data.referral_no}
        followup.referral |= {"link": data.link, "at": now.isoformat()}
        detail |= followup.referral
    elif data.action == "trace_upstream":
        detail |= _trace_upstream(session, followup, data, actor, now)
    elif data.action == "notify":
        notify(session, followup, now, actor)
        return followup
    elif data.action == "accept_result":
        followup.confirmed_at = now
    elif data.action == "close":
        followup.closed_at = now
    event(session, followup, now, actor, data.action, target or followup.state, detail or None)
    if followup.state == "confirmed" and data.action in ("lab_result", "accept_result"):
        notify(session, followup, now, "system")
    return followup
