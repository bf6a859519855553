"""Helpers of the plan tests: the shipped populations, imports, a licensed kitchen fleet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.plan.imports import import_rows
from fangxin.trace.plan.models import Population
from fangxin.trace.plan.populations import CITY, CONFIRMED, UNITS

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def seed_populations(sessions: sessionmaker[Session]) -> None:
    """Put back the populations migration 0015 seeds (conftest's PostgreSQL wipe removes them)."""
    with sessions.begin() as session:
        if session.scalar(select(Population.district).limit(1)) is not None:
            return
        for unit in (CITY, *UNITS):
            value = CONFIRMED.get(unit)
            session.add(
                Population(
                    district=unit,
                    population=value,
                    source="第七次全国人口普查" if value else "未核实（本地设置）",
                    confirmed=value is not None,
                )
            )


def load(
    sessions: sessionmaker[Session],
    kind: str,
    rows: list[Mapping[str, object]],
    source: str = "测试导入",
) -> None:
    """Import rows of a kind in one transaction."""
    with sessions.begin() as session:
        import_rows(session, kind, list(enumerate(rows, start=2)), source, NOW)


def licence(no: str, category: str, district: str = "新华区") -> dict[str, object]:
    """Return a licence register row."""
    return {
        "licence_no": no,
        "name": f"{no} 餐饮",
        "category": category,
        "district": district,
        "address": "平顶山市测试路1号",
    }
