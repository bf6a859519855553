"""Queries over rapid-test results."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fangxin.trace.models import RapidTestResult

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
