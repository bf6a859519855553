"""Dashboard figures per district, aggregated in SQL: markets, kitchens, 30-day trends, alerts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from fangxin.days import last_days, local_day
from fangxin.db import UTCDateTime
from fangxin.devices import alarms
from fangxin.devices.models import Alarm, Device, Site
from fangxin.devices.trend import daily_uptime
from fangxin.service.context import state
from fangxin.trace.certificates.models import EntryCheck
from fangxin.trace.plan.overview import kitchen_figures
from fangxin.trace.results.followup import OPEN_CASE
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult

R = RapidTestResult
LONG_OFFLINE = dt.timedelta(hours=1)
WEEK = 7
INBOX = 20


def _scope(district: str | None) -> list[Any]:
    return [Site.district == district] if district else []


def _ratio(n: float, d: float) -> float | None:
    return round(n / d, 4) if d else None


def districts(session: Session, district: str | None) -> list[str]:
    """Return the districts a viewer sees."""
    if district:
        return [district]
    return list(session.scalars(select(Site.district).distinct().order_by(Site.district)))


def markets(
    session: Session, start: dt.datetime, end: dt.datetime, district: str | None
) -> dict[str, dict[str, Any]]:
    """Markets per district: 快检 batches, positives, negatives, open cases and entry checks.

    查验完成率 = decided / checked lots; 凭合格证入场率 = lots admitted on a 合格证 / checked.
    """
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"markets": 0, "tests": 0, "positives": 0, "open_cases": 0, "lots": 0}
    )
    scope = _scope(district)
    for d, n in session.execute(
        select(Site.district, func.count())
        .where(Site.kind == "market", *scope)
        .group_by(Site.district)
    ):
        out[d]["markets"] = n
    positive = func.sum(case((R.verdict == "positive", 1), else_=0))
    negative = func.sum(case((R.verdict == "negative", 1), else_=0))
    for d, n, p, neg in session.execute(
        select(Site.district, func.count(), positive, negative)
        .join(Site, Site.id == R.site_id)
        .where(R.ts >= start, R.ts < end, R.parent_id.is_(None), *scope)
        .group_by(Site.district)
    ):
        out[d]["tests"], out[d]["positives"], out[d]["negatives"] = n, int(p or 0), int(neg or 0)
    for d, n in session.execute(
        select(Site.district, func.count())
        .select_from(Followup)
        .join(Site, Site.id == Followup.site_id)
        .where(Followup.state.in_(OPEN_CASE), *scope)
        .group_by(Site.district)
    ):
        out[d]["open_cases"] = n
    E = EntryCheck
    # Lots still waiting for a test or a visual check are not decided yet.
    pending = func.sum(case((E.status.in_(("pending_test", "external_certificate")), 1), else_=0))
    on_cert = func.sum(case((and_(E.status == "admitted", E.test_result_id.is_(None)), 1), else_=0))
    for d, lots, p, c in session.execute(
        select(Site.district, func.count(), pending, on_cert)
        .join(Site, Site.id == E.site_id)
        .where(E.checked_at >= start, E.checked_at < end, *scope)
        .group_by(Site.district)
    ):
        row = out[d]
        row["lots"] = lots
        row["entry_completion_rate"] = _ratio(lots - int(p or 0), lots)
        row["certificate_rate"] = _ratio(int(c or 0), lots)
    for row in out.values():
        row.setdefault("entry_completion_rate", None)
        row.setdefault("certificate_rate", None)
        # 阴性率: negatives of first tests; a positive awaits its retest, a suspect is neither.
        row["negative_rate"] = _ratio(row.get("negatives", 0), row["tests"])
    return dict(out)


def kitchens(session: Session, now: dt.datetime, tz: str, district: str | None) -> dict[str, Any]:
    """Kitchens' 明厨亮灶 figures over 近7日: today and the 6 local days before (grouped SQL)."""
    share = state().settings.internet_mclz_min_share

    def compute() -> dict[str, Any]:
        # Whole days (not 7 x 24 h back from now): six of them are stored (camera_days) and
        # the figure holds still through a day instead of moving with the clock.
        _, today_start, _ = local_day(now, tz)
        start = last_days(today_start, WEEK)[0][1]
        return kitchen_figures(session, start, now, tz=tz, district=district, share=share)

    return dict(state().figures.get(("kitchens", district, tz), compute))


def _days_table(bounds: list[tuple[int, dt.datetime, dt.datetime]]) -> Any:
    rows: list[Any] = [
        select(
            literal(i).label("i"),
            literal(a, UTCDateTime()).label("d0"),
            literal(b, UTCDateTime()).label("d1"),
            literal(a.timestamp()).label("s0"),
            literal(b.timestamp()).label("s1"),
        )
        for i, a, b in bounds
    ]
    return union_all(*rows).subquery("days")


def trends(
    session: Session,
    bounds: list[tuple[int, dt.datetime, dt.datetime]],
    now: dt.datetime,
    district: str | None,
) -> dict[str, list[float | None]]:
    """Per day: batches tested, 阴性率 and device uptime (all devices in scope)."""
    days = _days_table(bounds)
    n = len(bounds)
    tests: list[float | None] = [0.0] * n
    negative_share: list[float | None] = [None] * n
    scope = _scope(district)
    negative = func.sum(case((R.verdict == "negative", 1), else_=0))
    for i, count, neg in session.execute(
        select(days.c.i, func.count(R.id), negative)
        .select_from(days)
        .join(R, and_(R.ts >= days.c.d0, R.ts < days.c.d1))
        .join(Site, Site.id == R.site_id)
        .where(R.parent_id.is_(None), *scope)
        .group_by(days.c.i)
    ):
        tests[i] = float(count)
        negative_share[i] = _ratio(int(neg or 0), count)
    uptime = daily_uptime(session, bounds, now, scope)
    return {"tests": tests, "negative_rate": negative_share, "uptime": uptime}


def inbox(session: Session, now: dt.datetime, district: str | None) -> dict[str, list[Any]]:
    """Return the alerts a regulator acts on: open positive cases, long outages, AI alarms."""
    scope = _scope(district)
    cases = session.execute(
        select(Followup, Site, R)
        .join(Site, Site.id == Followup.site_id)
        .join(R, R.id == Followup.result_id)
        .where(Followup.state.in_(OPEN_CASE), *scope)
        .order_by(Followup.opened_at.desc())
        .limit(INBOX)
    ).all()
    offline = session.execute(
        select(Device, Site)
        .join(Site, Site.id == Device.site_id)
        .where(
            Device.active.is_(True),
            Device.conn_state == "offline",
            Device.conn_since < now - LONG_OFFLINE,
            *scope,
        )
        .order_by(Device.conn_since, Device.id)
        .limit(INBOX)
    ).all()
    ai = session.execute(
        alarms.alarms_query(district=district, category="ai")
        .where(Alarm.status != "closed")
        .limit(INBOX)
    ).all()
    return {
        "cases": [tuple(r) for r in cases],
        "offline": [tuple(r) for r in offline],
        "ai": [tuple(r) for r in ai],
    }
