"""A site's status (智慧菜市 status): today's rapid tests, devices, alarms and entry checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from fangxin.days import local_day
from fangxin.devices import alarms, registry
from fangxin.devices.models import Site
from fangxin.devices.status import StatusContext
from fangxin.trace.certificates import entries
from fangxin.trace.results import queries


def site_status(session: Session, site: Site, now: dt.datetime, tz: str) -> dict[str, Any]:
    """Return the site's status as of now."""
    today, start, end = local_day(now, tz)
    context = StatusContext(session, site, now, today, start, end)
    body: dict[str, Any] = {"date": today.isoformat(), "as_of": now.isoformat()}
    body.update(queries.status_section(context))
    body.update(registry.status_section(context))
    body.update(alarms.status_section(context))
    body.update(entries.status_section(context))
    return body
