"""A site's status (智慧菜市 status), assembled from sections each area contributes."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fangxin.devices.models import Site

# "module:function" of each section; a section returns the keys it adds to the status.
SECTIONS: tuple[str, ...] = (
    "fangxin.trace.results:status_section",
    "fangxin.devices.registry:status_section",
    "fangxin.devices.alarms:status_section",
    "fangxin.trace.entries:status_section",
)


@dataclass(frozen=True, slots=True)
class StatusContext:
    """What every section needs: the site, the time and today's bounds in the city's zone."""

    session: Session
    site: Site
    now: dt.datetime
    today: dt.date
    day_start: dt.datetime
    day_end: dt.datetime


Section = Callable[[StatusContext], dict[str, Any]]


def local_day(now: dt.datetime, tz: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Return today's date in the city's time zone and its bounds as aware datetimes."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    start = dt.datetime.combine(today, dt.time(), zone)
    return today, start, start + dt.timedelta(days=1)


def _section(spec: str) -> Section:
    module, _, name = spec.partition(":")
    section: Section = getattr(importlib.import_module(module), name)
    return section


def site_status(session: Session, site: Site, now: dt.datetime, tz: str) -> dict[str, Any]:
    """Return the site's status as of now."""
    today, start, end = local_day(now, tz)
    context = StatusContext(session, site, now, today, start, end)
    body: dict[str, Any] = {"date": today.isoformat(), "as_of": now.isoformat()}
    for spec in SECTIONS:
        body.update(_section(spec)(context))
    return body
