"""Pydantic models of sites and devices at the doors (HTTP, CLI, CSV import)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
SiteKind = Literal["market", "kitchen"]
DeviceKind = Literal["rapid_test", "camera", "nvr", "scale", "sensor"]


class SiteIn(BaseModel):
    """A site to register."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    kind: SiteKind
    district: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Annotated[str, Field(max_length=32)] | None = None


class SiteOut(SiteIn):
    """A registered site."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    created_at: dt.datetime


class DeviceIn(BaseModel):
    """A device to register."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    site: Id
    kind: DeviceKind
    interval_s: Annotated[int, Field(ge=1, le=86400)] = 60


class DeviceOut(BaseModel):
    """A registered device and its liveness as last seen."""

    id: str
    site: str
    kind: str
    interval_s: int
    active: bool
    online: bool
    last_seen_at: dt.datetime | None
    state: str | None


class DeviceCreated(DeviceOut):
    """A device just registered, with its MQTT credentials (shown once)."""

    mqtt_username: str
    mqtt_password: str
