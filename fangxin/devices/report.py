"""Regulators' figures: device uptime, the fleet report against the targets, offline now, worst.

The fleet report groups by district and category; the worst lists rank devices and sites.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import ONLINE, effective_interval, offline_now_clause
from fangxin.devices.fleet import Filters, Fleet, fleet_figures
from fangxin.devices.models import CAMERA_KINDS, CoverageTarget, Device, Site
from fangxin.devices.report_rows import category_of, device_rows, site_rows
from fangxin.devices.timeline import device_uptime as device_uptime  # its callers import it here
from fangxin.devices.uptime import Figures

ALL = "全部"


@dataclass(slots=True)
class Group:
    """Sites and devices of one district and/or category."""

    district: str
    category: str
    sites: int = 0
    licensed: int = 0
    covered: int = 0
    devices: int = 0
    online_now: int = 0
    figures: Figures = field(default_factory=Figures)

    def as_dict(self, online_target: float | None) -> dict[str, Any]:
        """Return the group's row of the report."""
        rate = self.online_now / self.devices if self.devices else None
        return {
            "district": self.district,
            "category": self.category,
            "sites": self.sites,
            "licensed_sites": self.licensed,
            "covered_sites": self.covered,
            "coverage": round(self.covered / self.licensed, 6) if self.licensed else None,
            "devices": self.devices,
            "online_now": self.online_now,
            "online_rate_now": None if rate is None else round(rate, 6),
            "online_rate_target": online_target,
            "online_rate_met": None
            if rate is None or online_target is None
            else rate >= online_target,
            **self.figures.as_dict(),
        }


def _is_licensed(site: Site) -> bool:
    return site.kind == "kitchen" and bool(site.licence_no)


def _covered_sites(fleet: Fleet) -> set[str]:
    """Return sites with at least one camera online at some moment of the window."""
    return {d.site_id for d in fleet.devices if d.kind in CAMERA_KINDS and d.figures.online_s > 0}


def summarise(fleet: Fleet, targets: Iterable[CoverageTarget]) -> dict[str, Any]:
    """Group the fleet by district and category, with subtotals, coverage and the targets."""
    targets = list(targets)
    online_target = next((t.target for t in targets if t.metric == "online_rate"), None)
    covered = _covered_sites(fleet)
    groups: dict[tuple[str, str], Group] = {}

    def groups_of(site: Site) -> list[Group]:
        keys = [(ALL, ALL), (site.district, ALL), (ALL, category_of(site))]
        keys.append((site.district, category_of(site)))
        return [groups.setdefault(k, Group(*k)) for k in keys]

    of_site: dict[str, list[Group]] = {}
    for site in fleet.sites:
        of_site[site.id] = groups_of(site)
        licensed = _is_licensed(site)
        for group in of_site[site.id]:
            group.sites += 1
            group.licensed += licensed
            group.covered += licensed and site.id in covered
    # Seconds are summed as plain floats per group: 10,000 devices x 4 groups add up fast.
    sums: dict[int, list[float]] = {id(g): [0.0, 0.0, 0.0] for g in groups.values()}
    for device in fleet.devices:
        f = device.figures
        for group in of_site[device.site_id]:
            group.devices += 1
            group.online_now += device.online_now
            acc = sums[id(group)]
            acc[0] += f.online_s
            acc[1] += f.offline_s
            acc[2] += f.unknown_s
    for group in groups.values():
        group.figures = Figures(*sums[id(group)])
    order = sorted(groups, key=lambda k: (k[0] != ALL, k[0], k[1] != ALL, k[1]))
    return {
        "summary": [groups[k].as_dict(online_target) for k in order],
        "coverage": coverage(fleet.sites, covered, targets),
    }


def coverage(
    sites: list[Site], covered: set[str], targets: list[CoverageTarget]
) -> list[dict[str, Any]]:
    """Coverage of licensed kitchens per coverage target, for the city and each district."""
    out = []
    for target in (t for t in targets if t.metric == "coverage"):
        scope = [
            s
            for s in sites
            if _is_licensed(s) and (not target.categories or s.category in target.categories)
        ]
        by_district: dict[str, list[Site]] = defaultdict(list)
        for site in scope:
            by_district[site.district].append(site)
        for district, members in [(ALL, scope), *sorted(by_district.items())]:
            n = sum(1 for s in members if s.id in covered)
            rate = n / len(members) if members else None
            out.append(
                {
                    "target": target.code,
                    "name": target.name,
                    "district": district,
                    "categories": target.categories or None,
                    "licensed_sites": len(members),
                    "covered_sites": n,
                    "coverage": None if rate is None else round(rate, 6),
                    "goal": target.target,
                    "due": target.due.isoformat() if target.due else None,
                    "met": None if rate is None else rate >= target.target,
                }
            )
    return out


def uptime_report(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
    filters: Filters | None = None,
) -> dict[str, Any]:
    """Return the regulators' uptime report (JSON-ready)."""
    fleet = fleet_figures(
        session, start, end, now, tz=tz, business_hours=business_hours, filters=filters
    )
    targets = session.scalars(select(CoverageTarget).order_by(CoverageTarget.code)).all()
    return {
        "from": fleet.start.isoformat(),
        "to": fleet.end.isoformat(),
        "as_of": now.isoformat(),
        "business_hours": business_hours,
        "unknown_periods": [{"from": a.isoformat(), "to": b.isoformat()} for a, b in fleet.unknown],
        "unknown_periods_by_door": {
            door: [{"from": a.isoformat(), "to": b.isoformat()} for a, b in periods]
            for door, periods in fleet.unknown_by_door.items()
        },
        **summarise(fleet, targets),
        "sites": site_rows(fleet),
        "devices": device_rows(fleet),
    }


def worst(fleet: Fleet, n: int) -> dict[str, Any]:
    """Return the n devices and n sites with the lowest uptime (unobserved ones left out)."""
    devices = sorted(
        (d for d in fleet.devices if d.figures.uptime is not None),
        key=lambda d: (d.figures.uptime, -d.figures.offline_s, d.device_id),
    )[:n]
    sites = sorted(
        (r for r in site_rows(fleet) if r["uptime"] is not None),
        key=lambda r: (r["uptime"], -r["offline_s"], r["site"]),
    )[:n]
    return {
        "devices": [
            {"device": d.device_id, "site": d.site_id, "kind": d.kind, **d.figures.as_dict()}
            for d in devices
        ],
        "sites": sites,
    }


def offline_now(
    session: Session, now: dt.datetime, filters: Filters | None = None
) -> list[dict[str, Any]]:
    """Return active devices offline now, longest outage first."""
    filters = filters or Filters()
    rows = session.execute(
        select(Device, Site)
        .join(Site, Site.id == Device.site_id)
        .where(Device.active.is_(True), *filters.sites())
        .where(offline_now_clause(now))
        .order_by(Device.conn_since, Device.id)
    ).all()
    out = []
    for device, site in rows:
        if filters.kind and device.kind != filters.kind:
            continue
        since = device.conn_since
        if device.conn_state == ONLINE and device.last_seen_at:  # timed out, not swept yet
            since = device.last_seen_at + dt.timedelta(seconds=effective_interval(device))
        out.append(
            {
                "device": device.id,
                "site": site.id,
                "site_name": site.name,
                "district": site.district,
                "category": category_of(site),
                "kind": device.kind,
                "offline_since": since.isoformat() if since else None,
                "offline_s": round((now - since).total_seconds(), 3) if since else None,
                "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
            }
        )
    return out
