"""The gateway's memory: devices by 国标编码, channels by NVR, failures by address, counters."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from fangxin.devices.sipdevices import SipDevice

FAILURES_ALLOWED = 5  # refused REGISTERs from one address within the window before it is shut out
FAILURE_WINDOW_S = 60.0
BLOCK_S = 60.0


@dataclass(slots=True)
class _Failures:
    count: int
    since: float
    blocked_until: float = 0.0


@dataclass(slots=True)
class Throttle:
    """Shuts out an address after repeated refusals, so it cannot guess passwords or flood us."""

    allowed: int = FAILURES_ALLOWED
    window_s: float = FAILURE_WINDOW_S
    block_s: float = BLOCK_S
    _by_host: dict[str, _Failures] = field(default_factory=dict)

    def blocked(self, host: str) -> bool:
        """Tell whether requests from this address are dropped now."""
        entry = self._by_host.get(host)
        return entry is not None and entry.blocked_until > time.monotonic()

    def failed(self, host: str) -> bool:
        """Count a refusal; return True when it shuts the address out."""
        now = time.monotonic()
        entry = self._by_host.get(host)
        if entry is None or now - entry.since > self.window_s:
            if len(self._by_host) > 100_000:  # a spread-out attack must not exhaust memory
                self._by_host.clear()
            entry = self._by_host[host] = _Failures(0, now)
        entry.count += 1
        if entry.count >= self.allowed:
            entry.blocked_until = now + self.block_s
            return True
        return False

    def succeeded(self, host: str) -> None:
        """Forget an address's refusals after a good registration."""
        self._by_host.pop(host, None)


class Devices:
    """GB/T 28181 devices known to the gateway; misses are looked up in the database once."""

    def __init__(self, lookup: Callable[[str], SipDevice | None]) -> None:
        """Start empty; `lookup` reads one device by 国标编码 from the database."""
        self._lookup = lookup
        self.by_gb: dict[str, SipDevice] = {}
        self.children: dict[str, list[SipDevice]] = {}
        self.channel_on: dict[str, bool] = {}

    def add(self, device: SipDevice, on: bool = True) -> None:
        """Remember a device (a channel joins its NVR's list)."""
        self.by_gb[device.gb_id] = device
        if device.parent is not None:
            siblings = self.children.setdefault(device.parent, [])
            if all(d.gb_id != device.gb_id for d in siblings):
                siblings.append(device)
            self.channel_on[device.id] = on

    def get(self, gb_id: str) -> SipDevice | None:
        """Return a device by code; a code not in memory is looked up (devices added meanwhile)."""
        device = self.by_gb.get(gb_id)
        if device is None and len(gb_id) == 20 and gb_id.isdigit():
            device = self._lookup(gb_id)
            if device is not None:
                self.add(device)
        return device

    def live_channels(self, parent_id: str) -> list[str]:
        """Return the ids of an NVR's channels whose last status was ON."""
        return [c.id for c in self.children.get(parent_id, ()) if self.channel_on.get(c.id, True)]


class Counters(Counter[str]):
    """What the gateway received and refused, by kind (logged, and read by tests and bench)."""
