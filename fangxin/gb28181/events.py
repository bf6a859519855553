"""Rows the gateway writes: security events, alarms, and the channel changes of a Catalog."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fangxin.devices.sipdevices import SipDevice
from fangxin.gb28181 import sip
from fangxin.gb28181.manscdp import Command
from fangxin.gb28181.state import Devices

# GB/T 28181 AlarmMethod 5 (视频报警) AlarmType -> fangxin alarm types; others keep their codes.
VIDEO_TYPES = {"6": "stranger", "11": "occlusion"}
METHODS = {"5": "video_alarm", "6": "device_fault"}
_GONE = ("OFF", "OFFLINE", "DEL", "DEFECT", "VLOST")
_BACK = ("ON", "ONLINE", "ADD", "UPDATE")


def security_row(
    kind: str, detail: str, message: sip.Message, contact: str, device: SipDevice | None
) -> dict[str, Any]:
    """Return a security_events row for a refused SIP request (topic: method and source)."""
    return {
        "kind": kind,
        "topic": f"sip:{message.method} from {contact}"[:300],
        "device_id": device.id if device else None,
        "site_id": device.site_id if device else None,
        "detail": f"{detail}; From {message.header('from')}"[:2000],
    }


def _alarm_time(raw: str, tz: ZoneInfo, now: dt.datetime) -> dt.datetime:
    try:
        ts = dt.datetime.fromisoformat(raw)
    except ValueError:
        return now
    ts = ts if ts.tzinfo else ts.replace(tzinfo=tz)  # GB/T 28181 times are local, without offset
    # A device clock far off is not believed: the alarm happened about when we received it.
    return ts if abs(ts - now) <= dt.timedelta(days=1) else now


def alarm_row(
    device: SipDevice, command: Command, now: dt.datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """Return an alarms row for a Notify Alarm (the id is stable for a re-sent notification)."""
    fields = command.fields
    method, kind = fields.get("AlarmMethod", ""), fields.get("AlarmType", "")
    if method == "5" and kind in VIDEO_TYPES:
        alarm_type = VIDEO_TYPES[kind]
    else:
        alarm_type = METHODS.get(method, f"gb_alarm_{method or 'x'}"[:32])
    ts = _alarm_time(fields.get("AlarmTime", ""), tz, now)
    return {
        "device_id": device.id,
        "site_id": device.site_id,
        "alarm_id": f"gb-{command.sn or ts.strftime('%Y%m%d%H%M%S')}-{ts:%Y%m%dT%H%M%S}"[:64],
        "ts": ts,
        "received_at": now,
        "type": alarm_type,
        "status": "new",
        "extra": {
            key: fields[key][:200]
            for key in ("AlarmPriority", "AlarmMethod", "AlarmType", "AlarmDescription")
            if key in fields
        },
    }


def catalog_changes(
    device: SipDevice, command: Command, devices: Devices
) -> tuple[list[tuple[str, str | None]], list[tuple[str, bool]]]:
    """Return the new channels (code, name) and the (channel id, ON?) states a Catalog carries."""
    new: list[tuple[str, str | None]] = []
    states: list[tuple[str, bool]] = []
    for item in command.channels:
        code = item.device_id
        if code == device.gb_id or len(code) != 20 or not code.isdigit():
            continue
        known = devices.by_gb.get(code)
        if known is None:
            known = SipDevice(
                code, code, device.site_id, "camera", None, device.id, None, None, True
            )
            devices.add(known)
            new.append((code, item.name))
        elif known.parent != device.id:
            continue  # another device's code: an NVR may not speak for it
        status = item.event or item.status
        if status in _GONE:
            states.append((known.id, False))
        elif status in _BACK or status is None:
            states.append((known.id, True))
    return new, states
