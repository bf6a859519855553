"""What every section of a site's status reads: the site, the time and today's bounds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from fangxin.devices.models import Site


@dataclass(frozen=True, slots=True)
class StatusContext:
    """The site, the time and today's bounds in the city's zone, for one status."""

    session: Session
    site: Site
    now: dt.datetime
    today: dt.date
    day_start: dt.datetime
    day_end: dt.datetime
