"""Per-process caches of the web app, built once by create_app: scan pages, dashboard figures."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fangxin.trace.certificates.page_changes import KEEP_S, PageChanges

# Reads the feed from a cursor (None: where it stands), pruning rows older than the time given.
Feed = Callable[[int | None, float | None], PageChanges]
PRUNE_EVERY_S = 600.0
# Even a covered page is rendered again after this: the feed leaves out anonymous scan counts
# (the page shows them), and a row it lost (pruned from a transaction open past KEEP_S) heals.
MAX_AGE_S = 300.0


class PageCache:
    """Rendered scan pages, kept until the change feed names their certificate.

    Every ttl_s the first request reads the feed (one query) and drops the pages it names; a
    page is otherwise served with no query at all. A change committed anywhere (another
    worker, the ingester, a hand edit) therefore shows within ttl_s in every worker; one made
    in this process clears the cache at once. A page whose feed coverage is partial (a
    re-issued lot: its upstream's changes are not logged against it) is kept ttl_s only.
    """

    def __init__(self, ttl_s: float, feed: Feed) -> None:
        """Keep pages while the feed allows (ttl_s 0: no caching), reading it every ttl_s."""
        self.ttl_s = ttl_s
        self.feed = feed
        self.pages: dict[str, tuple[float, int, str]] = {}
        self.codes: dict[int, str] = {}
        self.sites: dict[str, tuple[float, bool]] = {}
        # Bumped by each read of the feed: a page rendered before a read that applied since
        # may predate a change that read dropped already, so it is kept ttl_s only.
        self.generation = 0
        self._cursor: int | None = None
        self._read_at = -math.inf
        self._pruned_at = time.monotonic()
        self._lock = threading.Lock()
        self._reading = threading.Lock()

    def clear(self) -> None:
        """Forget every page (a status changed in this process)."""
        with self._lock:
            self.pages.clear()
            self.codes.clear()

    def follow(self) -> None:
        """Read the feed if ttl_s passed since the last read, dropping the pages it names."""
        if self.ttl_s <= 0 or time.monotonic() - self._read_at < self.ttl_s:
            return
        # One thread reads; the others serve meanwhile (late by that one query at most).
        if not self._reading.acquire(blocking=False):
            return
        try:
            self._read(time.monotonic())
        finally:
            self._reading.release()

    def _read(self, started: float) -> None:
        """Read the feed and drop the pages it names (the caller holds the reading lock)."""
        if started - self._read_at < self.ttl_s:
            return  # another thread read it just before
        # A reader idle for half the feed's life may have missed pruned rows: start over.
        cursor = None if started - self._read_at > KEEP_S / 2 else self._cursor
        prune = started - self._pruned_at > PRUNE_EVERY_S
        changes = self.feed(cursor, time.time() - KEEP_S if prune else None)
        with self._lock:
            if cursor is None or changes.every:
                self.pages.clear()
                self.codes.clear()
            for cert_id in changes.certificates:
                code = self.codes.pop(cert_id, None)
                if code is not None:
                    self.pages.pop(code, None)
            self.generation += 1
            self._cursor, self._read_at = changes.cursor, started
            if prune:
                self._pruned_at = started

    def get(self, code: str) -> tuple[int, str] | None:
        """Return (certificate id, html) of a kept page (call follow first)."""
        hit = self.pages.get(code)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, code: str, cert_id: int, html: str, covered: bool, generation: int) -> None:
        """Keep a page rendered after reading generation; covered: the feed logs its changes."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self.pages) > 10_000:
                self.pages.clear()
                self.codes.clear()
            lasts = MAX_AGE_S if covered and generation == self.generation else self.ttl_s
            self.pages[code] = (time.monotonic() + lasts, cert_id, html)
            self.codes[cert_id] = code

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
