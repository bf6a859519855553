"""A small fleet whose uptime report is pinned to a stored answer (tests/data/uptime_report.json).

Whole seconds and whole minutes only: every figure is then an exact float on SQLite and on
PostgreSQL alike, so the report's full output can be compared exactly, both clocks, several
windows (one across midnight, one past now) and each filter.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.fleet import Filters
from fangxin.devices.models import CoverageTarget, Device, Site
from fangxin.devices.report import uptime_report
from tests.devices_helpers import HOUR, at, observed, outages, seed_targets

DAY = 24 * HOUR
GOLDEN = Path(__file__).parent / "data" / "uptime_report.json"
# site: district, category, kind, licensed, opens, closes, devices as (kind, over SIP)
SITES: dict[str, tuple[str, str | None, str, bool, str, str, list[tuple[str, bool]]]] = {
    "k-1": ("新华区", "学校食堂", "kitchen", True, "06:00", "22:00", [("camera", False)] * 3),
    "k-2": ("新华区", "中小餐饮", "kitchen", False, "22:00", "02:00", [("camera", True)] * 2),
    "k-3": ("湛河区", "中央厨房", "kitchen", True, "10:30", "14:00", [("camera", False)] * 2),
    "k-4": ("湛河区", "大型餐饮", "kitchen", True, "00:00", "00:00", [("nvr", True)] * 2),
    "k-5": ("湛河区", "学校食堂", "kitchen", True, "06:00", "22:00", [("camera", True)] * 2),
    "k-6": ("卫东区", "学校食堂", "kitchen", True, "06:00", "22:00", []),
    "m-1": ("卫东区", None, "market", False, "06:00", "22:00", [("rapid_test", False)] * 2),
}
# (start, end, now) in seconds after T0 (Monday 00:00 in Asia/Shanghai)
WINDOWS = [
    (0.5 * HOUR, 1.8 * DAY, 1.9 * DAY),
    (20 * HOUR, 28 * HOUR, 2 * DAY),  # 20:00 to 04:00, across midnight
    (DAY, 3 * DAY, 2.5 * DAY),  # the end is cut at now; open outages run to now
    (-3 * HOUR, 10 * HOUR, 10 * HOUR),  # starts before the devices' registration
]
DEVICES = [f"{site}-d{n}" for n, site in enumerate((s for s in SITES for _ in SITES[s][6]), 1)]
FILTERS = [
    Filters(),
    Filters(district="湛河区"),
    Filters(category="学校食堂"),
    Filters(kind="camera"),
    Filters(site="k-2"),
]


def seed(sessions: sessionmaker[Session]) -> None:
    """Register the fleet, each door's observed runs and random whole-second outages."""
    with sessions.begin() as session:  # another test may have moved the seeded targets
        session.execute(delete(CoverageTarget))
    seed_targets(sessions)
    rng = random.Random(17)
    with sessions.begin() as session:
        for n, (site_id, (district, category, kind, licensed, opens, closes, _)) in enumerate(
            SITES.items()
        ):
            session.add(
                Site(
                    id=site_id,
                    kind=kind,
                    district=district,
                    name=f"{site_id} 单位",
                    category=category,
                    licence_no=f"JY{n:014d}" if licensed else None,
                    opens=opens,
                    closes=closes,
                    created_at=at(-2 * HOUR),
                )
            )
        session.flush()  # the devices' foreign keys
        kinds = [kind for site in SITES.values() for kind in site[6]]
        for n, (device_id, (device_kind, sip)) in enumerate(zip(DEVICES, kinds, strict=True), 1):
            session.add(
                Device(
                    id=device_id,
                    site_id=device_id.rsplit("-d", 1)[0],
                    kind=device_kind,
                    gb_id=f"410402000013{n:08d}" if sip else None,
                    created_at=at(-HOUR if n % 4 else 5 * HOUR + 7 * 60),
                )
            )
        session.add(Device(id="k-1-gone", site_id="k-1", kind="camera", active=False))
    # Unobserved stretches of each door, one across midnight.
    observed(sessions, (-2 * HOUR, 5 * HOUR), (6 * HOUR, 23 * HOUR), (25 * HOUR, 4 * DAY))
    observed(sessions, (-2 * HOUR, 30 * HOUR), (30 * HOUR + 1800, 4 * DAY), door="sip")
    for device_id in DEVICES:
        t, spans = 0, []
        while t < 2 * DAY:
            down = t + rng.randrange(600, 4 * HOUR)
            up = down + rng.randrange(30, 3 * HOUR)
            spans.append((float(down), float(up) if up < 2 * DAY else None))
            t = up
        outages(sessions, device_id, *spans)


def reports(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Return every window's report, both clocks and each filter, keyed by what it asked."""
    out: dict[str, Any] = {}
    with sessions() as session:
        for n, (start, end, now) in enumerate(WINDOWS):
            for business in (False, True):
                for filters in FILTERS if n == 0 else FILTERS[:2]:
                    key = f"{start}-{end}-{now} business={business} {filters}"
                    out[key] = uptime_report(
                        session, at(start), at(end), at(now),
                        tz="Asia/Shanghai", business_hours=business, filters=filters,
                    )  # fmt: skip
    # through JSON, as the doors serve it: tuples and lists compare alike
    result: dict[str, Any] = json.loads(json.dumps(out, sort_keys=True))
    return result


def write_golden(sessions: sessionmaker[Session]) -> None:
    """Store the current code's answer (run once, from the code the answer is to pin)."""
    text = json.dumps(reports(sessions), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    GOLDEN.write_text(text + "\n")


def golden() -> dict[str, Any]:
    """Return the stored answer."""
    stored: dict[str, Any] = json.loads(GOLDEN.read_text())
    return stored
