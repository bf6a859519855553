"""Follow-up of positives: opened at once in 暂停销售, decided by 复测, 送检 or 复检, to disposal.

Every change of a follow-up is a transition with a time and an actor, written to
followup_events in the same transaction: that table is the audit trail. The rules, with their
sources, are data in followup_rules; the steps people take are in followup_actions.

Paths (followup_rules.RULES): a market self-test's positive is repeated (复测) twice with the same
method: two negatives clear it, two non-negatives confirm it, a mix goes to a CMA lab (送检). A
suspect repeat counts with the positives: the 40-50 % band hides true exceedances. A regulator's
positive opens the seller's 4-hour 复检 window (Art. 88). A banned substance is sealed at once
and never cleared by repeats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, func, insert, or_, select
from sqlalchemy.orm import Session

from fangxin.db.bulk import insert_ignore
from fangxin.trace.notify.webhooks import enqueue
from fangxin.trace.results.cases import case_payload
from fangxin.trace.results.followup_models import Followup, FollowupAlert, FollowupEvent
from fangxin.trace.results.followup_rules import (
    ACTIONS,
    OPEN_CASE,
    RECHECK_WINDOW,
    REPEATS,
    STATES,
)
from fangxin.trace.results.models import RapidTestResult, TestItem

__all__ = ["OPEN_CASE", "STATES", "after_results", "allowed_actions", "notify"]
CASE_CONFIRMED = "case.confirmed"
CASE_SEALED = "case.sealed"
_R = RapidTestResult


class IllegalTransition(Exception):
    """An action the follow-up's state (or the clock) does not allow."""

    def __init__(self, followup: Followup, action: str, now: dt.datetime, why: str = "") -> None:
        """Say which action was refused in which state, and what is allowed."""
        self.state = followup.state
        self.action = action
        self.allowed = allowed_actions(followup, now)
        super().__init__(
            f"follow-up {followup.id} is {followup.state}: {action} is not allowed"
            f"{why} (allowed: {', '.join(self.allowed) or 'none'})"
        )


def _guard(followup: Followup, action: str, now: dt.datetime) -> str | None:
    """Return why an action its state allows is still refused, or None."""
    deadline = followup.recheck_deadline
    if action == "request_recheck" and deadline is not None and now > deadline:
        return f": the 4-hour 复检 window closed at {deadline.isoformat()}"
    if action == "accept_result" and deadline is not None and now <= deadline:
        return f": the seller may ask for 复检 until {deadline.isoformat()}"
    if action == "refer" and followup.path != "banned":
        return ": 行刑衔接 is for banned substances"
    if action == "dispose" and followup.path == "banned" and followup.lab_result != "positive":
        return ": a banned substance is disposed of after the legal method confirms it"
    if action == "close" and followup.reported_at is None:
        return ": report to the county 市场监管 office first"
    if action == "close" and followup.path == "banned" and not followup.referral:
        return ": refer the case to the police (行刑衔接) first"
    return None


def refusal(followup: Followup, action: str, now: dt.datetime) -> str | None:
    """Return why an action is refused now (state or guard), or None when it is allowed."""
    states, _ = ACTIONS[action]
    why = _guard(followup, action, now)
    if followup.state not in states:
        return why or ""
    return why


def allowed_actions(followup: Followup, now: dt.datetime) -> list[str]:
    """Return the actions a person may take now."""
    return [name for name in ACTIONS if refusal(followup, name, now) is None]


def event(
    session: Session,
    followup: Followup,
    at: dt.datetime,
    actor: str,
    action: str,
    to_state: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a transition (or a step that keeps the state) and apply it."""
    session.add(
        FollowupEvent(
            followup_id=followup.id,
            at=at,
            actor=actor,
            action=action,
            from_state=followup.state,
            to_state=to_state,
            detail=detail,
        )
    )
    followup.state = to_state
    followup.updated_at = at


def _path(result: Row[Any], banned: set[str]) -> tuple[str, str]:
    if result.item_code in banned:
        return "banned", "sealed"
    if result.tested_by == "regulator":
        return "recheck", "recheck_window"
    return "repeat", "suspended"


def _open(session: Session, results: Sequence[Row[Any]], now: dt.datetime) -> None:
    # Core bulk statements: a backlog may carry hundreds of positives in one batch.
    ids = [r.id for r in results]
    if not ids:
        return
    existing = set(session.scalars(select(Followup.result_id).where(Followup.result_id.in_(ids))))
    fresh = {r.id: r for r in results if r.id not in existing}
    if not fresh:
        return
    codes = {r.item_code for r in fresh.values()}
    banned = set(
        session.scalars(select(TestItem.code).where(TestItem.code.in_(codes), TestItem.banned))
    )
    rows = []
    for r in fresh.values():
        path, state = _path(r, banned)
        rows.append(
            {
                "result_id": r.id,
                "site_id": r.site_id,
                "state": state,
                "path": path,
                "recheck_deadline": now + RECHECK_WINDOW if path == "recheck" else None,
                "retests": 0,
                "opened_at": now,
                "updated_at": now,
                "certificate": r.certificate,
            }
        )
    insert_ignore(session, Followup.__table__, rows, ("result_id",))
    opened = session.execute(
        select(Followup.id, Followup.result_id, Followup.state).where(
            Followup.result_id.in_(list(fresh))
        )
    ).all()
    events = []
    for followup_id, result_id, state in opened:
        r = fresh[result_id]
        events.append(
            {
                "followup_id": followup_id,
                "at": now,
                "actor": f"device:{r.device_id}",
                "action": "open",
                "from_state": None,
                "to_state": state,
                "detail": {"result": r.id, "item": r.item_code, "value": r.value},
            }
        )
    session.execute(insert(cast(Table, FollowupEvent.__table__)), events)
    for followup_id, _, state in opened:
        if state == "sealed":  # the regulator hears of a banned substance at once
            found = session.get(Followup, followup_id)
            assert found is not None
            notify(session, found, now, "system", "case_sealed")


def after_results(session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> None:
    """Open follow-ups for new positives and advance them with repeats (idempotent)."""
    wanted = {
        (r["device_id"], r["result_id"])
        for r in rows
        if r.get("parent_id") is not None or (r["verdict"] == "positive")
    }
    if not wanted:
        return
    stored = session.execute(
        select(_R.id, _R.device_id, _R.site_id, _R.item_code, _R.value, _R.verdict)
        .add_columns(_R.certificate, _R.parent_id, _R.ts, _R.tested_by)
        .add_columns(_R.result_id)
        .where(_R.device_id.in_({k[0] for k in wanted}), _R.result_id.in_({k[1] for k in wanted}))
        .order_by(_R.ts, _R.id)
    ).all()
    stored = [r for r in stored if (r.device_id, r.result_id) in wanted]
    _open(session, [r for r in stored if r.parent_id is None], now)
    for retest in (r for r in stored if r.parent_id is not None):
        parent = session.get(RapidTestResult, retest.parent_id)
        chain = [parent.id, parent.parent_id] if parent else []
        # Locked: two repeats stored at once (HTTP and MQTT) must not both miss the other.
        followup = session.scalars(
            select(Followup)
            .where(Followup.result_id.in_([c for c in chain if c]))
            .with_for_update()
        ).first()
        if followup is None:
            if retest.verdict == "positive":  # repeat of a suspect that came out positive
                _open(session, [retest], now)
            continue
        advance(session, followup, now)


def advance(session: Session, followup: Followup, now: dt.datetime) -> None:
    """Take new repeats (复测) into account; clear, confirm or send to a lab once two decide."""
    root = followup.result_id
    children = select(_R.id).where(_R.parent_id == root).scalar_subquery()
    retests = session.execute(
        select(_R.id, _R.device_id, _R.verdict, _R.value)
        .where(or_(_R.parent_id == root, _R.parent_id.in_(children)))
        .order_by(_R.ts, _R.id)
    ).all()
    for number, r in enumerate(retests[followup.retests :], start=followup.retests + 1):
        detail = {"result": r.id, "verdict": r.verdict, "value": r.value, "retest": number}
        event(session, followup, now, f"device:{r.device_id}", "retest", followup.state, detail)
    followup.retests = len(retests)
    # Repeats decide only a market self-test's positive: a regulator's needs 复检, a banned
    # substance the legal method.
    if followup.state != "suspended" or len(retests) < REPEATS:
        return
    considered = [r.verdict for r in retests[:REPEATS]]
    detail = {"retests": considered, "rule": "repeats"}
    if all(v == "negative" for v in considered):
        event(session, followup, now, "system", "clear", "cleared", detail)
        followup.closed_at = now
    elif "negative" in considered:
        event(session, followup, now, "system", "send_to_lab", "lab_pending", detail)
    else:
        event(session, followup, now, "system", "confirm", "confirmed", detail)
        followup.confirmed_at = now
        notify(session, followup, now, "system")


def notify(
    session: Session,
    followup: Followup,
    now: dt.datetime,
    actor: str,
    kind: str = "case_confirmed",
) -> None:
    """Tell the regulator (检监联动): an in-app alert and a webhook to the district's receivers."""
    payload = case_payload(session, followup)
    site, result = payload["site"], payload["result"]
    stall = f" {result['stall']} 摊位" if result["stall"] else ""
    what = "检出禁用物质，已封存" if kind == "case_sealed" else STATES[followup.state]
    alert = FollowupAlert(
        followup_id=followup.id,
        site_id=site["id"],
        district=site["district"],
        kind=kind,
        title=f"{site['name']}{stall} {result['sample']} {result['item_name']} {what}",
        body=(
            f"检测值 {result['value']}{result['unit'] or ''}（判定限 {result['threshold']}），"
            f"复测 {followup.retests} 次；合格证 {result['certificate'] or '无'}"
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
    name = CASE_SEALED if kind == "case_sealed" else CASE_CONFIRMED
    sent = enqueue(session, name, key, payload, site["district"], now)
    followup.notified_at = now
    detail = {"alert": alert.id, "webhooks": sent}
    event(session, followup, now, actor, "notify", followup.state, detail)
