"""Registering and looking up sites and devices; liveness as the registry sees it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import ONLINE, effective_interval, is_online, start_offline
from fangxin.devices.credentials import hash_password, new_password
from fangxin.devices.gbcode import ha1, new_sip_password
from fangxin.devices.models import Device, Site
from fangxin.devices.schemas import Credentials, DeviceCreated, DeviceIn, DeviceOut, SiteIn
from fangxin.devices.status import StatusContext


class RegistryError(ValueError):
    """A registration that conflicts with what is registered."""


class NotFound(LookupError):
    """No such site or device."""


def add_site(session: Session, data: SiteIn) -> Site:
    """Register a site; its id must be new."""
    if session.get(Site, data.id) is not None:
        raise RegistryError(f"site {data.id} is already registered")
    # Unset business hours take the column defaults (06:00-22:00).
    site = Site(**data.model_dump(exclude_none=True))
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


def add_device(
    session: Session, data: DeviceIn, now: dt.datetime, sip_realm: str | None = None
) -> DeviceCreated:
    """Register a device and generate its credentials (the passwords are returned once).

    A device with a 国标编码 also gets a SIP password; only its Digest HA1 under `sip_realm`
    (the SIP domain) is stored.
    """
    get_site(session, data.site)
    if session.get(Device, data.id) is not None:
        raise RegistryError(f"device {data.id} is already registered")
    sip_password = None
    if data.gb_id is not None:
        if data.kind not in ("camera", "nvr"):
            raise RegistryError("only cameras and NVRs register over GB/T 28181")
        if sip_realm is None:
            raise RegistryError("a 国标编码 needs FANGXIN_SIP_ID (or FANGXIN_SIP_DOMAIN) set")
        if session.scalar(select(Device.id).where(Device.gb_id == data.gb_id)) is not None:
            raise RegistryError(f"国标编码 {data.gb_id} is already registered")
        sip_password = new_sip_password()
    password = new_password()
    device = Device(
        id=data.id,
        site_id=data.site,
        kind=data.kind,
        interval_s=data.interval_s,
        missed_beats=data.missed_beats,
        channel=data.channel,
        credential_hash=hash_password(password),
        created_at=now,
        gb_id=data.gb_id,
        sip_ha1=ha1(data.gb_id, sip_realm, sip_password)
        if data.gb_id and sip_realm and sip_password
        else None,
    )
    session.add(device)
    session.flush()
    # Registered but not heard from yet: offline from now (and an offline alarm if it stays so).
    start_offline(session, device.id, now, "registered")
    session.refresh(device)
    return DeviceCreated(
        **device_out(device, now).model_dump(),
        mqtt_username=device.id,
        mqtt_password=password,
        sip_password=sip_password,
    )


def device_out(device: Device, now: dt.datetime) -> DeviceOut:
    """Describe a device for the doors."""
    return DeviceOut(
        id=device.id,
        site=device.site_id,
        kind=device.kind,
        interval_s=effective_interval(device),
        announced_interval_s=device.announced_interval_s,
        missed_beats=device.missed_beats,
        active=device.active,
        online=is_online(device, now),
        last_seen_at=device.last_seen_at,
        state=device.state,
        channel=device.channel,
        online_since=device.conn_since if device.conn_state == ONLINE else None,
        offline_since=device.conn_since if device.conn_state != ONLINE else None,
    )


def get_device(session: Session, device_id: str) -> Device:
    """Return a device or raise NotFound."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} is not registered")
    return device


def rotate_credentials(session: Session, device_id: str, now: dt.datetime) -> Credentials:
    """Give a device a new MQTT password (returned once); the old one stops working on export."""
    device = get_device(session, device_id)
    password = new_password()
    device.credential_hash = hash_password(password)
    device.credentials_rotated_at = now
    session.flush()
    return Credentials(device=device.id, mqtt_username=device.id, mqtt_password=password)


def set_active(session: Session, device_id: str, active: bool, now: dt.datetime) -> Device:
    """Retire a device (it leaves the reports and the password file) or bring it back."""
    device = get_device(session, device_id)
    if device.active != active:
        device.active = active
        session.flush()
        if not active and device.conn_state == ONLINE:
            start_offline(session, device.id, now, "deactivated")
            session.refresh(device)
    return device


def list_devices(session: Session, site_id: str | None = None) -> Sequence[Device]:
    """List devices, optionally of one site."""
    stmt = select(Device).order_by(Device.id)
    if site_id:
        stmt = stmt.where(Device.site_id == site_id)
    return session.scalars(stmt).all()


# What is_online reads of a device.
LIVENESS_COLUMNS = (
    Device.interval_s,
    Device.reported_interval_s,
    Device.missed_beats,
    Device.last_seen_at,
    Device.state,
    Device.state_at,
    Device.conn_state,
    Device.deadline,
)


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about the site's devices."""
    # Only the columns liveness reads, as rows: loading 50 whole devices was half the status.
    devices = ctx.session.execute(
        select(Device.active, *LIVENESS_COLUMNS).where(Device.site_id == ctx.site.id)
    ).all()
    online = sum(1 for d in devices if d.active and is_online(d, ctx.now))
    return {"devices": {"known": len(devices), "online": online}}
