"""Per-process caches of the web app, built once by create_app: scan pages, dashboard figures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class PageCache:
    """Rendered scan pages kept for a second: a hot label scanned by a crowd costs one render.

    Revoking or recalling in this process clears it at once; other workers follow within ttl_s.
    After ttl_s a page is kept with its fingerprint (what it shows that can change): it is
    served again only while one query finds the same fingerprint, so a label scanned now and
    then costs a query, not a render, and no worker shows a change late.
    """

    def __init__(self, ttl_s: float) -> None:
        """Keep pages for ttl_s seconds (0: no caching, fingerprinted or not)."""
        self.ttl_s = ttl_s
        self.pages: dict[str, tuple[float, int, str]] = {}
        self.sites: dict[str, tuple[float, bool]] = {}
        self.known: dict[str, tuple[tuple[Any, ...], int, str]] = {}

    def clear(self) -> None:
        """Forget every page (a status changed in this process)."""
        self.pages.clear()
        self.known.clear()

    def keep(self, code: str, fingerprint: tuple[Any, ...], cert_id: int, html: str) -> None:
        """Keep a rendered page with its fingerprint."""
        if self.ttl_s > 0:
            if len(self.known) > 10_000:
                self.known.clear()
            self.known[code] = (fingerprint, cert_id, html)

    def same(self, code: str, fingerprint: Callable[[], tuple[Any, ...]]) -> tuple[int, str] | None:
        """Return (certificate id, html) of a kept page whose fingerprint still holds."""
        kept = self.known.get(code)
        if kept is None or fingerprint() != kept[0]:
            return None
        return kept[1], kept[2]

    def get(self, code: str) -> tuple[int, str] | None:
        """Return (certificate id, html) while fresh."""
        hit = self.pages.get(code)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, code: str, cert_id: int, html: str) -> None:
        """Keep a rendered page."""
        if self.ttl_s > 0:
            if len(self.pages) > 10_000:
                self.pages.clear()
            self.pages[code] = (time.monotonic() + self.ttl_s, cert_id, html)

    def site_known(self, site_id: str, exists: Callable[[str], bool]) -> bool:
        """Whether a declared market exists (remembered for a minute); exists asks the database."""
        hit = self.sites.get(site_id)
        if hit is None or hit[0] < time.monotonic():
            known = len(site_id) <= 64 and exists(site_id)
            hit = (time.monotonic() + 60, known)
            if len(self.sites) < 10_000:
                self.sites[site_id] = hit
        return hit[1]


class FigureCache:
    """Dashboard figures reused for ttl_s seconds: the same for every viewer of a district."""

    def __init__(self, ttl_s: float) -> None:
        """Keep values for ttl_s seconds (0: compute every time)."""
        self.ttl_s = ttl_s
        self._values: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """Return a recent value of key, computing it when missing or stale."""
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        value = compute()
        with self._lock:
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()
