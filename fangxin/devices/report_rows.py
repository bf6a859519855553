"""Rows of the uptime report: one per site and one per device, with their summed figures."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fangxin.devices.fleet import DeviceFigures, Fleet
from fangxin.devices.models import Site
from fangxin.devices.uptime import Figures


def category_of(site: Site) -> str:
    """Return the site's category, or its kind for sites without one (markets)."""
    return site.category or site.kind


def site_rows(fleet: Fleet) -> list[dict[str, Any]]:
    """Return one row per site with its devices' summed figures."""
    by_site: dict[str, list[DeviceFigures]] = defaultdict(list)
    for device in fleet.devices:
        by_site[device.site_id].append(device)
    rows = []
    for site in fleet.sites:
        devices = by_site.get(site.id, [])
        # Summed as floats in device order, as Figures.__add__ would, without its objects.
        online = offline = unknown = 0.0
        for d in devices:
            online += d.figures.online_s
            offline += d.figures.offline_s
            unknown += d.figures.unknown_s
        total = Figures(online, offline, unknown)
        rows.append(
            {
                "site": site.id,
                "name": site.name,
                "district": site.district,
                "category": category_of(site),
                "site_kind": site.kind,
                "licence_no": site.licence_no,
                "devices": len(devices),
                "online_now": sum(d.online_now for d in devices),
                **total.as_dict(),
            }
        )
    return rows


def device_rows(fleet: Fleet) -> list[dict[str, Any]]:
    """Return one row per device with its site and figures."""
    # A site's columns are read once, not per device (ORM attribute reads add up at 10,000).
    of_site = {
        s.id: {
            "site": s.id,
            "name": s.name,
            "district": s.district,
            "category": category_of(s),
            "site_kind": s.kind,
        }
        for s in fleet.sites
    }
    return [
        {
            "device": device.device_id,
            "kind": device.kind,
            **of_site[device.site_id],
            "online_now": device.online_now,
            **device.figures.as_dict(),
        }
        for device in fleet.devices
    ]
