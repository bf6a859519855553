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
        total = sum((d.figures for d in devices), Figures())
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
    site_of = {s.id: s for s in fleet.sites}
    rows = []
    for device in fleet.devices:
        site = site_of[device.site_id]
        rows.append(
            {
                "device": device.device_id,
                "kind": device.kind,
                "site": site.id,
                "name": site.name,
                "district": site.district,
                "category": category_of(site),
                "site_kind": site.kind,
                "online_now": device.online_now,
                **device.figures.as_dict(),
            }
        )
    return rows
