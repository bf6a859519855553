"""Simulated device fleets: what each device publishes and when (no transport here)."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

from fangxin.contract.topics import Channel
from fangxin.devices.schemas import DeviceIn, SiteIn

SAMPLES = (
    ("菠菜", "蔬菜"),
    ("小白菜", "蔬菜"),
    ("芹菜", "蔬菜"),
    ("韭菜", "蔬菜"),
    ("豇豆", "蔬菜"),
    ("油麦菜", "蔬菜"),
    ("黄瓜", "蔬菜"),
)
TESTERS = ("张三", "李四", "王芳")


@dataclass(frozen=True, slots=True)
class Publication:
    """One message a device sends."""

    site_id: str
    device_id: str
    channel: Channel
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(slots=True)
class SimDevice:
    """A device being simulated, with its schedule."""

    site_id: str
    device_id: str
    kind: str
    interval_s: int = 60
    next_status: float = 0.0
    next_result: float = 0.0
    sequence: int = 0


@dataclass(slots=True)
class Simulator:
    """Decides what each device publishes at a given moment; seeded, so runs repeat."""

    devices: list[SimDevice]
    result_every_s: float = 20.0
    positive_rate: float = 0.05
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        """Seed the random source and stagger the first messages."""
        self.rng = random.Random(self.seed)
        for device in self.devices:
            device.next_status = self.rng.uniform(0, 2)
            device.next_result = self.rng.uniform(0, self.result_every_s)

    def due(self, elapsed_s: float, now: dt.datetime) -> list[Publication]:
        """Return what is due at elapsed_s seconds into the run."""
        out: list[Publication] = []
        for device in self.devices:
            if elapsed_s >= device.next_status:
                device.next_status = elapsed_s + device.interval_s
                out.append(self._status(device, now))
            if device.kind == "rapid_test" and elapsed_s >= device.next_result:
                device.next_result = elapsed_s + self.rng.expovariate(1 / self.result_every_s)
                out.append(self._result(device, now))
        return out

    def _status(self, device: SimDevice, now: dt.datetime) -> Publication:
        body: dict[str, object] = {
            "ts": now.isoformat(timespec="seconds"),
            "interval_s": device.interval_s,
        }
        if device.kind in ("camera", "nvr"):
            body.update(
                fps=25,
                bitrate_kbps=round(self.rng.uniform(1800, 2200), 1),
                storage_free_gb=round(self.rng.uniform(600, 900), 1),
                temp_c=round(self.rng.uniform(35, 48), 1),
            )
        return Publication(
            device.site_id, device.device_id, "status", json.dumps(body).encode(), qos=0
        )

    def _result(self, device: SimDevice, now: dt.datetime) -> Publication:
        device.sequence += 1
        name, category = self.rng.choice(SAMPLES)
        roll = self.rng.random()
        if roll < self.positive_rate:
            value = self.rng.uniform(50, 85)
        elif roll < self.positive_rate * 2:
            value = self.rng.uniform(40, 50)
        else:
            value = self.rng.uniform(2, 35)
        body = {
            "id": f"r-{now:%Y%m%d%H%M%S}-{device.sequence:06d}",
            "ts": now.isoformat(timespec="seconds"),
            "item": "pesticide-ache",
            "value": round(value, 1),
            "unit": "%",
            "sample": {
                "name": name,
                "category": category,
                "stall": f"A-{self.rng.randint(1, 40):02d}",
            },
            "tester": self.rng.choice(TESTERS),
            "reagent_lot": "R2411",
        }
        return Publication(
            device.site_id,
            device.device_id,
            "result",
            json.dumps(body, ensure_ascii=False).encode(),
        )


def demo_fleet() -> tuple[list[SiteIn], list[DeviceIn]]:
    """Return the demo's 3 markets and 3 kitchens with their devices."""
    sites = [
        SiteIn(id="m-001", kind="market", district="新华区", name="新华区光明路农贸市场"),
        SiteIn(id="m-002", kind="market", district="卫东区", name="卫东区建设路农贸市场"),
        SiteIn(id="m-003", kind="market", district="郏县", name="郏县城关农贸市场"),
        SiteIn(
            id="k-001",
            kind="kitchen",
            district="新华区",
            name="市第一中学食堂",
            category="学校食堂",
            licence_no="JY34104020000011",
        ),
        SiteIn(
            id="k-002",
            kind="kitchen",
            district="湛河区",
            name="湛河区中央厨房",
            category="中央厨房",
            licence_no="JY34104030000022",
        ),
        SiteIn(
            id="k-003",
            kind="kitchen",
            district="卫东区",
            name="鹰城老字号饭店",
            category="大型餐饮",
            licence_no="JY24104030000033",
        ),
    ]
    devices: list[DeviceIn] = []
    for site in sites:
        if site.kind == "market":
            devices.append(
                DeviceIn(id=f"rt-{site.id}", site=site.id, kind="rapid_test", interval_s=60)
            )
        else:
            for n in (1, 2):
                devices.append(
                    DeviceIn(id=f"cam-{site.id}-{n}", site=site.id, kind="camera", interval_s=60)
                )
    return sites, devices
