"""Registering and looking up sites and devices; liveness as the registry sees it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices.credentials import hash_password, new_password
from fangxin.devices.models import Device, Site
from fangxin.devices.schemas import DeviceCreated, DeviceIn, DeviceOut, SiteIn

if TYPE_CHECKING:
    from fangxin.site_status import StatusContext

MISSED_BEATS = 3  # GB/T 28181 keepalive default: three missed heartbeats mean offline


class RegistryError(ValueError):
    """A registration that conflicts with what is registered."""


class NotFound(LookupError):
    """No such site or device."""


def add_site(session: Session, data: SiteIn) -> Site:
    """Register a site; its id must be new."""
    if session.get(Site, data.id) is not None:
        raise RegistryError(f"site {data.id} is already registered")
    site = Site(**data.model_dump())
    session.add(site)
    session.flush()
    return site


def get_site(session: Session, site_id: str) -> Site:
    """Return a site or raise NotFound."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"site {site_id} is not registered")
    return site


def list_sites(session: Session, district: str | None = None) -> Sequence[Site]:
    """List sites, optionally of one district."""
    stmt = select(Site).order_by(Site.id)
    if district:
        stmt = stmt.where(Site.district == district)
    return session.scalars(stmt).all()


def effective_interval(device: Device) -> int:
    """Return the heartbeat interval in force: the latest status payload's, else the registry's."""
    return device.reported_interval_s or device.interval_s


def is_online(device: Device, now: dt.datetime) -> bool:
    """Tell whether a device is online now: not declared offline and heard from recently."""
    if device.state == "offline" and (
        device.last_seen_at is None or (device.state_at and device.state_at >= device.last_seen_at)
    ):
        return False
    if device.last_seen_at is None:
        return False
    return now - device.last_seen_at < dt.timedelta(
        seconds=MISSED_BEATS * effective_interval(device)
    )


def add_device(session: Session, data: DeviceIn, now: dt.datetime) -> DeviceCreated:
    """Register a device and generate its MQTT credentials (the password is returned once)."""
    get_site(session, data.site)
    if session.get(Device, data.id) is not None:
        raise RegistryError(f"device {data.id} is already registered")
    password = new_password()
    device = Device(
        id=data.id,
        site_id=data.site,
        kind=data.kind,
        interval_s=data.interval_s,
        credential_hash=hash_password(password),
        created_at=now,
    )
    session.add(device)
    session.flush()
    return DeviceCreated(
        **device_out(device, now).model_dump(), mqtt_username=device.id, mqtt_password=password
    )


def device_out(device: Device, now: dt.datetime) -> DeviceOut:
    """Describe a device for the doors."""
    return DeviceOut(
        id=device.id,
        site=device.site_id,
        kind=device.kind,
        interval_s=effective_interval(device),
        active=device.active,
        online=is_online(device, now),
        last_seen_at=device.last_seen_at,
        state=device.state,
    )


def list_devices(session: Session, site_id: str | None = None) -> Sequence[Device]:
    """List devices, optionally of one site."""
    stmt = select(Device).order_by(Device.id)
    if site_id:
        stmt = stmt.where(Device.site_id == site_id)
    return session.scalars(stmt).all()


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about the site's devices."""
    devices = list_devices(ctx.session, ctx.site.id)
    online = sum(1 for d in devices if d.active and is_online(d, ctx.now))
    return {"devices": {"known": len(devices), "online": online}}
