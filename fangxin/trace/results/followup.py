"""Follow-up of positives: retests, then a case (下架, 封存, 销毁/退货, 溯源, 检监联动) to closure.

Every change of a follow-up is a transition with a time and an actor, written to
followup_events in the same transaction: that table is the audit trail.

Retest rule (market practice, domain.md §2.1): a positive is retested twice; if both retests
are positive the result is confirmed, and a negative retest clears it. A suspect retest does
not clear: the 40-50 % band hides true exceedances (domain.md §2.1), so it counts with the
positives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, func, insert, or_, select
from sqlalchemy.orm import Session

from fangxin.db.bulk import insert_ignore
from fangxin.trace.certificates.upstream import issuer_of, lookup_certificate
from fangxin.trace.notify.webhooks import enqueue
from fangxin.trace.results.cases import case_payload
from fangxin.trace.results.followup_models import Followup, FollowupAlert, FollowupEvent
from fangxin.trace.results.models import RapidTestResult
from fangxin.trace.results.schemas import ActionIn

RETESTS = 2
STATES = {
    "retest_pending": "待复检",
    "cleared": "复检阴性，已排除",
    "confirmed": "确认阳性，待下架",
    "sale_stopped": "已下架",
    "sealed": "已封存",
    "destroyed": "已销毁",
    "returned": "已退货",
    "closed": "已结案",
}
OPEN_CASE = frozenset({"confirmed", "sale_stopped", "sealed", "destroyed", "returned"})
# action: (states it may be taken in, state it leads to; None keeps the state)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "stop_sale": (frozenset({"confirmed"}), "sale_stopped"),
    "seal": (frozenset({"sale_stopped"}), "sealed"),
    "destroy": (frozenset({"sealed"}), "destroyed"),
    "return": (frozenset({"sealed"}), "returned"),
    "lab_confirm": (OPEN_CASE, None),
    "trace_upstream": (OPEN_CASE, None),
    "notify": (OPEN_CASE, None),
    "close": (frozenset({"destroyed", "returned"}), "closed"),
}
CASE_CONFIRMED = "case.confirmed"
# The market's own lab may not confirm or overturn its positive, nor close the case (§8).
REGULATOR_ACTIONS = frozenset({"lab_confirm", "close"})
_R = RapidTestResult


class IllegalTransition(Exception):
    """An action the follow-up's state does not allow."""

    def __init__(self, followup: Followup, action: str) -> None:
        """Say which action was refused in which state, and what is allowed."""
        self.state = followup.state
        self.action = action
        self.allowed = allowed_actions(followup)
        super().__init__(
            f"follow-up {followup.id} is {followup.state}: {action} is not allowed"
            f" (allowed: {', '.join(self.allowed) or 'none'})"
        )


class FollowupError(ValueError):
    """An action that lacks what it needs (e.g. no certificate to trace)."""


class NotYourStep(PermissionError):
    """An action that only a regulator may take."""


def allowed_actions(followup: Followup) -> list[str]:
    """Return the actions a person may take now."""
    allowed = [name for name, (states, _) in ACTIONS.items() if followup.state in states]
    # A laboratory that overturns the rapid test lets the case close before disposal.
    if followup.lab_result == "negative" and followup.state in OPEN_CASE and "close" not in allowed:
        allowed.append("close")
    return allowed


def _event(
    session: Session,
    followup: Followup,
    at: dt.datetime,
    actor: str,
    action: str,
    to_state: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        FollowupEvent(
            followup_id=followup.id,
            at=at,
            actor=actor,
            action=action,
            from_state=followup.state if action != "open" else None,
            to_state=to_state,
            detail=detail,
        )
    )
    followup.state = to_state
    followup.updated_at = at


def _open(session: Session, results: Sequence[Row[Any]], now: dt.datetime) -> None:
    # Core bulk statements: a backlog may carry hundreds of positives in one batch.
    ids = [r.id for r in results]
    if not ids:
        return
    existing = set(session.scalars(select(Followup.result_id).where(Followup.result_id.in_(ids))))
    fresh = {r.id: r for r in results if r.id not in existing}
    if not fresh:
        return
    rows = [
        {
            "result_id": r.id,
            "site_id": r.site_id,
            "state": "retest_pending",
            "retests": 0,
            "opened_at": now,
            "updated_at": now,
            "certificate": r.certificate,
        }
        for r in fresh.values()
    ]
    insert_ignore(session, Followup.__table__, rows, ("result_id",))
    opened = session.execute(
        select(Followup.id, Followup.result_id).where(Followup.result_id.in_(list(fresh)))
    )
    events = []
    for followup_id, result_id in opened:
        r = fresh[result_id]
        events.append(
            {
                "followup_id": followup_id,
                "at": now,
                "actor": f"device:{r.device_id}",
                "action": "open",
                "from_state": None,
                "to_state": "retest_pending",
                "detail": {"result": r.id, "item": r.item_code, "value": r.value},
            }
        )
    session.execute(insert(cast(Table, FollowupEvent.__table__)), events)


def after_results(session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> None:
    """Open follow-ups for new positives and advance them with retests (idempotent)."""
    wanted = {
        (r["device_id"], r["result_id"])
        for r in rows
        if r.get("parent_id") is not None or (r["verdict"] == "positive")
    }
    if not wanted:
        return
    stored = session.execute(
        select(_R.id, _R.device_id, _R.site_id, _R.item_code, _R.value, _R.verdict)
        .add_columns(_R.certificate, _R.parent_id, _R.ts)
        .add_columns(_R.result_id)
        .where(_R.device_id.in_({k[0] for k in wanted}), _R.result_id.in_({k[1] for k in wanted}))
        .order_by(_R.ts, _R.id)
    ).all()
    stored = [r for r in stored if (r.device_id, r.result_id) in wanted]
    _open(session, [r for r in stored if r.parent_id is None], now)
    for retest in (r for r in stored if r.parent_id is not None):
        parent = session.get(RapidTestResult, retest.parent_id)
        chain = [parent.id, parent.parent_id] if parent else []
        # Locked: two retests stored at once (HTTP and MQTT) must not both miss the other.
        followup = session.scalars(
            select(Followup)
            .where(Followup.result_id.in_([c for c in chain if c]))
            .with_for_update()
        ).first()
        if followup is None:
            if retest.verdict == "positive":  # retest of a suspect that came out positive
                _open(session, [retest], now)
            continue
        advance(session, followup, now)


def advance(session: Session, followup: Followup, now: dt.datetime) -> None:
    """Take new retests into account; confirm or clear once the rule decides."""
    root = followup.result_id
    children = select(_R.id).where(_R.parent_id == root).scalar_subquery()
    retests = session.execute(
        select(_R.id, _R.device_id, _R.verdict, _R.value)
        .where(or_(_R.parent_id == root, _R.parent_id.in_(children)))
        .order_by(_R.ts, _R.id)
    ).all()
    for number, r in enumerate(retests[followup.retests :], start=followup.retests + 1):
        detail = {"result": r.id, "verdict": r.verdict, "value": r.value, "retest": number}
        _event(session, followup, now, f"device:{r.device_id}", "retest", followup.state, detail)
    followup.retests = len(retests)
    if followup.state != "retest_pending":
        return
    considered = [r.verdict for r in retests[:RETESTS]]
    if "negative" in considered:
        _event(session, followup, now, "system", "clear", "cleared", {"retests": considered})
    elif len(considered) >= RETESTS:
        _event(session, followup, now, "system", "confirm", "confirmed", {"retests": considered})
        followup.confirmed_at = now
        notify(session, followup, now, "system")


def notify(session: Session, followup: Followup, now: dt.datetime, actor: str) -> None:
    """Tell the regulator (检监联动): an in-app alert and a webhook to the district's receivers."""
    payload = case_payload(session, followup)
    site, result = payload["site"], payload["result"]
    stall = f" {result['stall']} 摊位" if result["stall"] else ""
    alert = FollowupAlert(
        followup_id=followup.id,
        site_id=site["id"],
        district=site["district"],
        kind="case_confirmed",
        title=f"{site['name']}{stall} {result['sample']} {result['item_name']} 复检确认阳性",
        body=(
            f"检测值 {result['value']}{result['unit'] or ''}（判定限 {result['threshold']}），"
            f"复检 {followup.retests} 次；合格证 {result['certificate'] or '无'}"
        ),
        created_at=now,
    )
    session.add(alert)
    session.flush()
    earlier = session.scalar(
        select(func.count())
        .select_from(FollowupEvent)
        .where(FollowupEvent.followup_id == followup.id, FollowupEvent.action == "notify")
    )
    key = f"followup:{followup.id}:notify:{earlier or 0}"
    sent = enqueue(session, CASE_CONFIRMED, key, payload, site["district"], now)
    followup.notified_at = now
    detail = {"alert": alert.id, "webhooks": sent}
    _event(session, followup, now, actor, "notify", followup.state, detail)


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
    if data.action not in allowed_actions(followup):
        raise IllegalTransition(followup, data.action)
    _, target = ACTIONS[data.action]
    detail: dict[str, Any] = {k: v for k, v in (("note", data.note),) if v}
    if data.action in ("destroy", "return"):
        followup.disposal = data.action
    elif data.action == "lab_confirm":
        followup.lab_result = data.lab_result
        followup.lab_detail = {"lab": data.lab_name, "report_no": data.report_no}
        detail.update(lab_result=data.lab_result, lab=data.lab_name, report_no=data.report_no)
    elif data.action == "trace_upstream":
        number = data.certificate or followup.certificate
        if not number:
            raise FollowupError("no 合格证 number on the result: give `certificate`")
        found = lookup_certificate(session, number)
        followup.certificate = number
        followup.upstream_issuer = data.issuer or issuer_of(found) or followup.upstream_issuer
        detail.update(certificate=number, issuer=followup.upstream_issuer, register=found)
    elif data.action == "notify":
        notify(session, followup, now, actor)
        return followup
    elif data.action == "close":
        followup.closed_at = now
    _event(session, followup, now, actor, data.action, target or followup.state, detail or None)
    return followup
