"""Queries over rapid-test results."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fangxin.trace.models import RapidTestResult

if TYPE_CHECKING:
    from fangxin.site_status import StatusContext

VERDICTS = ("negative", "suspect", "positive")


def count_by_verdict(
    session: Session, site_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, int]:
    """Count a site's results tested in [start, end), by verdict."""
    rows = session.execute(
        select(RapidTestResult.verdict, func.count())
        .where(RapidTestResult.site_id == site_id)
        .where(RapidTestResult.ts >= start, RapidTestResult.ts < end)
        .group_by(RapidTestResult.verdict)
    )
    counts = dict.fromkeys(VERDICTS, 0)
    for verdict, count in rows:
        counts[verdict] = count
    return counts


def last_result_time(session: Session, site_id: str) -> dt.datetime | None:
    """Return when the site's latest result was tested."""
    return session.scalar(
        select(func.max(RapidTestResult.ts)).where(RapidTestResult.site_id == site_id)
    )


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about today's rapid tests."""
    counts = count_by_verdict(ctx.session, ctx.site.id, ctx.day_start, ctx.day_end)
    last = last_result_time(ctx.session, ctx.site.id)
    return {
        "results_today": {**counts, "total": sum(counts.values())},
        "last_result_at": last.isoformat() if last else None,
    }
