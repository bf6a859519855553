"""Queries over rapid-test results: counts, a day's figures, the status section."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from sqlalchemy import Executable, and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from fangxin.devices.status import StatusContext
from fangxin.trace.results.followup import OPEN_CASE
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult
from fangxin.trace.results.verdicts import VERDICTS

_R = RapidTestResult


def count_by_verdict(
    session: Session,
    site_id: str,
    start: dt.datetime,
    end: dt.datetime,
    include_retests: bool = True,
) -> dict[str, int]:
    """Count a site's results tested in [start, end), by verdict."""
    stmt = (
        select(_R.verdict, func.count())
        .where(_R.site_id == site_id)
        .where(_R.ts >= start, _R.ts < end)
        .group_by(_R.verdict)
    )
    if not include_retests:
        stmt = stmt.where(_R.parent_id.is_(None))
    counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for verdict, count in session.execute(stmt):
        counts[verdict] = count
    return counts


def last_result_time(session: Session, site_id: str) -> dt.datetime | None:
    """Return when the site's latest result was tested."""
    return session.scalar(select(func.max(_R.ts)).where(_R.site_id == site_id))


def open_cases(session: Session, site_id: str) -> int:
    """Count the site's confirmed positives whose case is not closed."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Followup)
            .where(Followup.site_id == site_id, Followup.state.in_(OPEN_CASE))
        )
        or 0
    )


@dataclass(frozen=True, slots=True)
class DayFigures:
    """A site's rapid tests of a day: batches (first tests; retests are not new batches)."""

    tests: int
    negatives: int
    suspect: int
    positives: int
    retests: int
    # Share of batches below the positive line: a suspect result complies with the standard
    # (it only asks for a retest); None when nothing was tested.
    pass_rate: float | None
    last_test_at: dt.datetime | None
    open_cases: int

    def as_json(self) -> dict[str, Any]:
        """Return the figures with times as RFC 3339 text."""
        data = asdict(self)
        data["last_test_at"] = self.last_test_at.isoformat() if self.last_test_at else None
        return data


@cache
def _day_query() -> Executable:
    """Build once the day's one query (building it cost more than running it)."""
    site: Any = bindparam("site")
    first = _R.parent_id.is_(None)
    columns: list[Any] = []
    for verdict in VERDICTS:
        mine = _R.verdict == verdict
        columns.append(func.coalesce(func.sum(case((and_(mine, first), 1), else_=0)), 0))
        columns.append(func.coalesce(func.sum(case((mine, 1), else_=0)), 0))
    return select(
        *columns,
        func.max(_R.ts),
        select(func.count())
        .select_from(Followup)
        .where(Followup.site_id == site, Followup.state.in_(OPEN_CASE))
        .scalar_subquery(),
        select(func.max(_R.ts)).where(_R.site_id == site).scalar_subquery(),
    ).where(_R.site_id == site, _R.ts >= bindparam("start"), _R.ts < bindparam("end"))


def _day_row(
    session: Session, site_id: str, start: dt.datetime, end: dt.datetime
) -> tuple[dict[str, int], dict[str, int], dt.datetime | None, int, dt.datetime | None]:
    """Return first tests and all results by verdict, last test, open cases, last ever (1 query)."""
    row = session.execute(_day_query(), {"site": site_id, "start": start, "end": end}).one()
    firsts: dict[str, int] = {v: int(row[2 * i]) for i, v in enumerate(VERDICTS)}
    every: dict[str, int] = {v: int(row[2 * i + 1]) for i, v in enumerate(VERDICTS)}
    n = 2 * len(VERDICTS)
    return firsts, every, row[n], int(row[n + 1] or 0), row[n + 2]


def _figures(first: dict[str, int], every: dict[str, int], last: Any, cases: int) -> DayFigures:
    tests = sum(first.values())
    return DayFigures(
        tests=tests,
        negatives=first["negative"],
        suspect=first["suspect"],
        positives=first["positive"],
        retests=sum(every.values()) - tests,
        pass_rate=round((tests - first["positive"]) / tests, 4) if tests else None,
        last_test_at=last,
        open_cases=cases,
    )


def day_figures(session: Session, site_id: str, start: dt.datetime, end: dt.datetime) -> DayFigures:
    """Return a site's figures for [start, end) in one query."""
    first, every, last, cases, _ = _day_row(session, site_id, start, end)
    return _figures(first, every, last, cases)


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about today's rapid tests and the open cases (one query)."""
    first, counts, last_today, cases, last = _day_row(
        ctx.session, ctx.site.id, ctx.day_start, ctx.day_end
    )
    today = _figures(first, counts, last_today, cases)
    return {
        # every result of the day, retests included
        "results_today": {**counts, "total": sum(counts.values())},
        "last_result_at": last.isoformat() if last else None,
        # batches of the day (retests excluded) and what became of them
        "tests_today": today.tests,
        "pass_rate_today": today.pass_rate,
        "open_cases": today.open_cases,
    }
