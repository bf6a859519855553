"""Simulated 明厨亮灶 cameras with configurable flakiness (no transport here).

Each camera heartbeats on `status` and raises AI alarms; faults come as random silent outages
(heartbeats stop, the connection stays: only the timeout notices), clean disconnects (the device
says `offline` itself), unclean ones (the broker publishes the will), flapping (quick reconnects)
and whole sites losing power (every camera of the site drops at once, uncleanly).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Literal

from fangxin.devices.alarms import AI_TYPES
from fangxin.sim.simulator import Publication

ActionKind = Literal["publish", "connect", "disconnect_clean", "disconnect_unclean"]


@dataclass(frozen=True, slots=True)
class Flakiness:
    """How often things go wrong, per camera (sites for power) and hour; durations in seconds."""

    outages_per_hour: float = 0.0
    outage_mean_s: float = 300.0
    disconnects_per_hour: float = 0.0
    unclean_share: float = 0.5
    disconnect_mean_s: float = 120.0
    flaps_per_hour: float = 0.0
    flap_cycles: int = 4
    flap_down_s: float = 3.0
    power_losses_per_hour: float = 0.0
    power_mean_s: float = 600.0
    alarms_per_hour: float = 0.0
    storage_low_share: float = 0.0


@dataclass(frozen=True, slots=True)
class Action:
    """Something a simulated camera does now."""

    kind: ActionKind
    site_id: str
    device_id: str
    publication: Publication | None = None


@dataclass(slots=True)
class Camera:
    """One simulated camera and its schedule (elapsed seconds of the run)."""

    site_id: str
    device_id: str
    interval_s: int = 60
    connected: bool = False
    down_until: float = 0.0  # disconnected until then
    silent_until: float = 0.0  # connected but not heartbeating until then
    next_status: float = 0.0
    next_alarm: float = float("inf")
    next_fault: float = float("inf")
    flaps_left: int = 0
    flap_at: float = float("inf")  # while flapping: when the next quick drop comes
    alarms: int = 0


@dataclass(slots=True)
class CameraFleet:
    """Decides what each camera does at a given moment; seeded, so runs repeat."""

    cameras: list[Camera]
    flakiness: Flakiness = field(default_factory=Flakiness)
    seed: int = 1
    rng: random.Random = field(init=False)
    next_power: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Seed the random source and draw every first event."""
        self.rng = random.Random(self.seed)
        for cam in self.cameras:
            cam.next_status = self.rng.uniform(0, 2)
            cam.next_alarm = self._after(0, self.flakiness.alarms_per_hour)
            cam.next_fault = self._after(0, self._fault_rate())
        for site in {c.site_id for c in self.cameras}:
            self.next_power[site] = self._after(0, self.flakiness.power_losses_per_hour)

    def _fault_rate(self) -> float:
        f = self.flakiness
        return f.outages_per_hour + f.disconnects_per_hour + f.flaps_per_hour

    def _after(self, now: float, per_hour: float) -> float:
        return now + self.rng.expovariate(per_hour / 3600) if per_hour > 0 else float("inf")

    def due(self, elapsed: float, now: dt.datetime) -> list[Action]:
        """Return what is due at `elapsed` seconds into the run."""
        out: list[Action] = []
        for site, at in list(self.next_power.items()):
            if elapsed >= at:
                self._power_loss(site, elapsed, out)
        for cam in self.cameras:
            if not cam.connected:
                if elapsed >= cam.down_until:
                    self._connect(cam, elapsed, out)
                continue
            if elapsed >= cam.flap_at:
                cam.flaps_left -= 1
                self._drop(cam, elapsed, self.flakiness.flap_down_s, out, clean=False)
                continue
            if elapsed >= cam.next_fault:
                self._fault(cam, elapsed, out)
                if not cam.connected:
                    continue
            if elapsed < cam.silent_until:
                continue
            if elapsed >= cam.next_status:
                cam.next_status = elapsed + cam.interval_s
                out.append(Action("publish", cam.site_id, cam.device_id, self._status(cam, now)))
            if elapsed >= cam.next_alarm:
                cam.next_alarm = self._after(elapsed, self.flakiness.alarms_per_hour)
                out.append(Action("publish", cam.site_id, cam.device_id, self._alarm(cam, now)))
        return out

    def _connect(self, cam: Camera, elapsed: float, out: list[Action]) -> None:
        cam.connected = True
        cam.next_status = elapsed  # a camera heartbeats as soon as it is back
        cam.flap_at = elapsed + 1.0 if cam.flaps_left > 0 else float("inf")
        out.append(Action("connect", cam.site_id, cam.device_id))

    def _drop(
        self, cam: Camera, elapsed: float, down_s: float, out: list[Action], clean: bool
    ) -> None:
        cam.connected = False
        cam.down_until = elapsed + down_s
        cam.silent_until = 0.0
        cam.flap_at = float("inf")
        kind: ActionKind = "disconnect_clean" if clean else "disconnect_unclean"
        out.append(Action(kind, cam.site_id, cam.device_id))

    def _fault(self, cam: Camera, elapsed: float, out: list[Action]) -> None:
        f = self.flakiness
        cam.next_fault = self._after(elapsed, self._fault_rate())
        roll = self.rng.uniform(0, self._fault_rate())
        if roll < f.outages_per_hour:
            cam.silent_until = elapsed + self.rng.expovariate(1 / f.outage_mean_s)
        elif roll < f.outages_per_hour + f.disconnects_per_hour:
            down = self.rng.expovariate(1 / f.disconnect_mean_s)
            self._drop(cam, elapsed, down, out, clean=self.rng.random() >= f.unclean_share)
        else:
            cam.flaps_left = max(f.flap_cycles - 1, 0)  # this drop is the first cycle
            self._drop(cam, elapsed, f.flap_down_s, out, clean=False)

    def _power_loss(self, site: str, elapsed: float, out: list[Action]) -> None:
        down = self.rng.expovariate(1 / self.flakiness.power_mean_s)
        self.next_power[site] = self._after(elapsed + down, self.flakiness.power_losses_per_hour)
        for cam in self.cameras:
            if cam.site_id == site and cam.connected:
                cam.flaps_left = 0
                self._drop(cam, elapsed, down, out, clean=False)

    def _status(self, cam: Camera, now: dt.datetime) -> Publication:
        low = self.rng.random() < self.flakiness.storage_low_share
        body = {
            "ts": now.isoformat(timespec="seconds"),
            "interval_s": cam.interval_s,
            "fps": 25,
            "bitrate_kbps": round(self.rng.uniform(1800, 2200), 1),
            "storage_free_gb": round(
                self.rng.uniform(1, 10) if low else self.rng.uniform(600, 900), 1
            ),
            "temp_c": round(self.rng.uniform(35, 48), 1),
        }
        return Publication(cam.site_id, cam.device_id, "status", json.dumps(body).encode(), qos=0)

    def _alarm(self, cam: Camera, now: dt.datetime) -> Publication:
        cam.alarms += 1
        body = {
            "id": f"a-{now:%Y%m%d%H%M%S}-{cam.alarms:05d}",
            "ts": now.isoformat(timespec="seconds"),
            "type": self.rng.choice(sorted(AI_TYPES)),
            "confidence": round(self.rng.uniform(0.6, 0.99), 2),
            "snapshot_url": f"https://snapshots.example/{cam.device_id}/{cam.alarms}.jpg",
        }
        return Publication(cam.site_id, cam.device_id, "alarm", json.dumps(body).encode())
