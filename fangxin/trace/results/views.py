"""Results and follow-ups as the doors show them (board, JSON, workflow API)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from fangxin.devices.models import Site
from fangxin.trace.results.followup import allowed_actions
from fangxin.trace.results.followup_models import Followup, FollowupEvent
from fangxin.trace.results.followup_rules import RULES, STATE_RULES, STATES
from fangxin.trace.results.models import RapidTestResult, TestItem
from fangxin.trace.results.schemas import (
    EventOut,
    FollowupBrief,
    FollowupOut,
    ResultOut,
    RuleOut,
)

_R = RapidTestResult
# Made once: an alias made per call costs more than the query it is used in.
_PARENT = aliased(RapidTestResult, name="parent")


def brief(followup: Followup) -> FollowupBrief:
    """Describe how a positive is being handled, in a word."""
    return FollowupBrief(
        id=followup.id,
        state=followup.state,
        state_zh=STATES.get(followup.state, followup.state),
        retests=followup.retests,
        disposal=followup.disposal,
        path=followup.path,
    )


def _names(session: Session) -> dict[str, str]:
    return {code: name for code, name in session.execute(select(TestItem.code, TestItem.name_zh))}


def _out(
    r: RapidTestResult, item_name: str | None, retest_of: str | None, followup: Followup | None
) -> ResultOut:
    return ResultOut(
        id=r.result_id,
        device=r.device_id,
        ts=r.ts,
        item=r.item_code,
        item_name=item_name or r.item_code,
        value=r.value,
        unit=r.unit,
        threshold=r.threshold,
        sample_name=r.sample_name,
        sample_category=r.sample_category,
        stall=r.stall,
        verdict=r.verdict,
        source=r.tested_by,
        retest_of=retest_of if r.parent_id else None,
        false_positive_risk=r.false_positive_risk,
        followup=brief(followup) if followup else None,
    )


def result_outs(session: Session, results: Sequence[RapidTestResult]) -> list[ResultOut]:
    """Describe results with item names and, for positives, their follow-up."""
    names = _names(session)
    ids = [r.id for r in results]
    parent_pks = {r.parent_id for r in results if r.parent_id is not None}
    parents = dict(session.execute(select(_R.id, _R.result_id).where(_R.id.in_(parent_pks))).all())
    followups = {
        f.result_id: f for f in session.scalars(select(Followup).where(Followup.result_id.in_(ids)))
    }
    return [
        _out(r, names.get(r.item_code), parents.get(r.parent_id or 0), followups.get(r.id))
        for r in results
    ]


def _described(session: Session, *where: Any, limit: int | None = None) -> list[ResultOut]:
    """Results matching where, latest first, with names, retest parents and follow-ups joined."""
    rows = session.execute(
        select(_R, TestItem.name_zh, _PARENT.result_id, Followup)
        .outerjoin(TestItem, TestItem.code == _R.item_code)
        .outerjoin(_PARENT, _PARENT.id == _R.parent_id)
        .outerjoin(Followup, Followup.result_id == _R.id)
        .where(*where)
        .order_by(_R.ts.desc(), _R.id.desc())
        .limit(limit)
    ).all()
    return [_out(r, name, retest_of, followup) for r, name, retest_of, followup in rows]


def results_between(
    session: Session, site_id: str, start: dt.datetime, end: dt.datetime, limit: int | None = None
) -> list[ResultOut]:
    """Return a site's results tested in [start, end), latest first (one query)."""
    return _described(session, _R.site_id == site_id, _R.ts >= start, _R.ts < end, limit=limit)


def is_positive_batch(result: ResultOut) -> bool:
    """Whether a result is a positive batch: a first test, or a retest its case follows."""
    return result.verdict == "positive" and (result.retest_of is None or bool(result.followup))


def rules_of(followup: Followup) -> list[RuleOut]:
    """Return the rules the follow-up's state applies, each with its source."""
    codes = list(STATE_RULES.get(followup.state, ()))
    if followup.path == "banned" and "banned" not in codes:
        codes.append("banned")
    return [
        RuleOut(code=c, text_zh=RULES[c].text_zh, source=RULES[c].source_zh, status=RULES[c].status)
        for c in codes
    ]


def followup_out(session: Session, followup: Followup, now: dt.datetime) -> FollowupOut:
    """Describe a follow-up with its result, its retests and its audited history."""
    result = session.get(RapidTestResult, followup.result_id)
    assert result is not None
    root = followup.result_id
    children = select(_R.id).where(_R.parent_id == root).scalar_subquery()
    retests = session.scalars(
        select(_R)
        .where(or_(_R.parent_id == root, _R.parent_id.in_(children)))
        .order_by(_R.ts, _R.id)
    ).all()
    events = session.scalars(
        select(FollowupEvent)
        .where(FollowupEvent.followup_id == followup.id)
        .order_by(FollowupEvent.id)
    ).all()
    result_out, *retest_outs = result_outs(session, [result, *retests])
    return FollowupOut(
        id=followup.id,
        site=followup.site_id,
        state=followup.state,
        state_zh=STATES.get(followup.state, followup.state),
        path=followup.path,
        retests=followup.retests,
        opened_at=followup.opened_at,
        recheck_deadline=followup.recheck_deadline,
        disposal_detail=followup.disposal_detail,
        reported_at=followup.reported_at,
        report_detail=followup.report_detail,
        referral=followup.referral,
        agri_notice=followup.agri_notice,
        rules=rules_of(followup),
        confirmed_at=followup.confirmed_at,
        closed_at=followup.closed_at,
        disposal=followup.disposal,
        lab_result=followup.lab_result,
        lab_detail=followup.lab_detail,
        certificate=followup.certificate,
        upstream_issuer=followup.upstream_issuer,
        notified_at=followup.notified_at,
        allowed_actions=allowed_actions(followup, now),
        result=result_out,
        retest_results=retest_outs,
        events=[EventOut.model_validate(e) for e in events],
    )


def list_followups(
    session: Session,
    *,
    site_id: str | None = None,
    district: str | None = None,
    states: Sequence[str] | None = None,
    offset: int = 0,
    limit: int = 200,
) -> list[Followup]:
    """List follow-ups, newest first, of a site or a district, optionally in some states."""
    stmt = (
        select(Followup)
        .order_by(Followup.opened_at.desc(), Followup.id.desc())
        .offset(offset)
        .limit(limit)
    )
    if site_id:
        stmt = stmt.where(Followup.site_id == site_id)
    if district:
        stmt = stmt.where(Followup.site_id.in_(select(Site.id).where(Site.district == district)))
    if states:
        stmt = stmt.where(Followup.state.in_(states))
    return list(session.scalars(stmt))
