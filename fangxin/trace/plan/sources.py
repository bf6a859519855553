"""The plan figures' inputs per district, each one grouped query (none per site or device)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, case, func, select, union
from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.trace.certificates.models import EntryCheck
from fangxin.trace.plan.hour_sets import epoch_sql
from fangxin.trace.plan.models import (
    REGISTERED_ONLY,
    KitchenForm,
    Licence,
    PlanFigure,
    Population,
    SamplingCount,
)
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult

R = RapidTestResult


def _scope(column: Any, district: str | None) -> list[Any]:
    return [column == district] if district else []


def districts(session: Session, district: str | None, year: int) -> list[str]:
    """Return the units with anything to show: sites, licences, imported counts or figures."""
    if district:
        return [district]
    query = union(
        select(Site.district),
        select(Licence.district),
        select(SamplingCount.district),
        select(PlanFigure.district).where(PlanFigure.year == year),
    )
    return sorted(d for (d,) in session.execute(query) if d)


def populations(session: Session) -> dict[str, Population]:
    """Return every unit's population row."""
    return {p.district: p for p in session.scalars(select(Population))}


def sampling(session: Session, year: int, district: str | None) -> dict[str, int]:
    """Return 抽检 batches per district of periods inside the calendar year."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    S = SamplingCount
    rows = session.execute(
        select(S.district, func.sum(S.batches))
        .where(S.period_start >= first, S.period_end <= last, *_scope(S.district, district))
        .group_by(S.district)
    )
    return {d: int(n or 0) for d, n in rows}


def rapid_tests(
    session: Session, start: dt.datetime, end: dt.datetime, district: str | None
) -> dict[str, tuple[int, int]]:
    """Return 快检 first tests (retests excluded) and their negatives per district."""
    negative = func.sum(case((R.verdict == "negative", 1), else_=0))
    rows = session.execute(
        select(Site.district, func.count(), negative)
        .join(Site, Site.id == R.site_id)
        .where(R.ts >= start, R.ts < end, R.parent_id.is_(None), *_scope(Site.district, district))
        .group_by(Site.district)
    )
    return {d: (int(n), int(neg or 0)) for d, n, neg in rows}


def entries(
    session: Session, start: dt.datetime, end: dt.datetime, district: str | None
) -> dict[str, tuple[int, int, int]]:
    """Return entry checks per district: lots checked, lots decided, lots admitted on 合格证."""
    E = EntryCheck
    decided = func.sum(case((E.status != "pending_test", 1), else_=0))
    on_cert = func.sum(case((and_(E.status == "admitted", E.test_result_id.is_(None)), 1), else_=0))
    rows = session.execute(
        select(Site.district, func.count(), decided, on_cert)
        .join(Site, Site.id == E.site_id)
        .where(E.checked_at >= start, E.checked_at < end, *_scope(Site.district, district))
        .group_by(Site.district)
    )
    return {d: (int(n), int(x or 0), int(c or 0)) for d, n, x, c in rows}


def licences(
    session: Session, last_day: dt.date, district: str | None
) -> dict[str, dict[str, tuple[int, int]]]:
    """Return per district and category: licences, and those with an accepted 明厨亮灶 form.

    A kitchen's latest inspection on or before last_day decides: covered when it accepted any
    form (a later inspection that found none accepted uncovers it).
    """
    K = KitchenForm
    latest = (
        select(K.licence_no, func.max(K.inspected_on).label("on"))
        .where(K.inspected_on <= last_day)
        .group_by(K.licence_no)
        .subquery("latest")
    )
    covered = (
        select(K.licence_no)
        .join(latest, and_(latest.c.licence_no == K.licence_no, latest.c.on == K.inspected_on))
        .where(K.accepted.is_(True))
        .distinct()
        .subquery("covered")
    )
    L = Licence
    rows = session.execute(
        select(L.district, L.category, func.count(), func.count(covered.c.licence_no))
        .outerjoin(covered, covered.c.licence_no == L.licence_no)
        .where(*_scope(L.district, district))
        .group_by(L.district, L.category)
    )
    out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for d, category, n, c in rows:
        out[d][category] = (int(n), int(c))
    return dict(out)


def licensed_sum(
    by_category: dict[str, tuple[int, int]], categories: tuple[str, ...]
) -> tuple[int, int]:
    """Sum licences and covered ones over categories (empty: every licensed, not 小餐饮)."""
    n = c = 0
    for category, (count, covered) in by_category.items():
        if categories and category not in categories:
            continue
        if not categories and category == REGISTERED_ONLY:
            continue
        n, c = n + count, c + covered
    return n, c


def connections(session: Session, district: str | None) -> list[tuple[str, str, str, str]]:
    """Return (site, licence, category, licence's district) of kitchens on the platform.

    A kitchen site is connected when its licence number is in the register; the register's
    category and district count (the numerator stays inside the denominator).
    """
    rows = session.execute(
        select(Site.id, Licence.licence_no, Licence.category, Licence.district)
        .join(Licence, Licence.licence_no == Site.licence_no)
        .where(Site.kind == "kitchen", *_scope(Licence.district, district))
    )
    return [(site, no, category, d) for site, no, category, d in rows]


def imported(
    session: Session, year: int, district: str | None
) -> dict[tuple[str, str], PlanFigure]:
    """Return the year's imported figures by (code, district)."""
    rows = session.scalars(
        select(PlanFigure).where(PlanFigure.year == year, *_scope(PlanFigure.district, district))
    )
    return {(f.code, f.district): f for f in rows}


def followup_hours(
    session: Session, start: dt.datetime, end: dt.datetime, district: str | None
) -> dict[str, tuple[float | None, float | None]]:
    """Return the mean hours from a positive to the notice and to closing, per district."""
    dialect = session.get_bind().dialect.name
    F = Followup
    opened = epoch_sql(F.opened_at, dialect)
    to_notice = func.avg(epoch_sql(F.notified_at, dialect) - opened) / 3600.0
    to_close = func.avg(epoch_sql(F.closed_at, dialect) - opened) / 3600.0
    rows = session.execute(
        select(Site.district, to_notice, to_close)
        .join(Site, Site.id == F.site_id)
        .where(F.opened_at >= start, F.opened_at < end, *_scope(Site.district, district))
        .group_by(Site.district)
    )
    return {
        d: (None if a is None else float(a), None if b is None else float(b)) for d, a, b in rows
    }
