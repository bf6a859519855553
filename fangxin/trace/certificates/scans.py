"""Scans of certificates, logged without personal data, and the copied-code signal."""

from __future__ import annotations

import atexit
import datetime as dt
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate, CertificateScan, EntryCheck

_LOGGER = logging.getLogger(__name__)
# Rows (certificate, day, visitor, market) buffered before the writer is woken early.
MAX_ROWS = 1000
# Distinct visitor-days always plausible for one lot, and how many more each unit adds
# (about one buyer per half kilo or per piece, with a wide margin).
PLAUSIBLE_FLOOR = 50
PER_UNIT = {"kg": 6.0, "斤": 3.0, "g": 0.006, "t": 6000.0}
PER_PIECE = 3.0
# One lot seldom reaches more markets than this; more suggests the code was copied.
MAX_MARKETS = 3


def visitor_id(secret: str, day: dt.date, client: str) -> str:
    """Pseudonymise a client for one day: not reversible, unlinkable across days."""
    # hmac.digest: OpenSSL's one-shot HMAC, the same bytes as hmac.new(...).digest() for less.
    mac = hmac.digest(secret.encode(), f"{day.isoformat()}|{client}".encode(), "sha256")
    return mac.hex()[:16]


def record_scans(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add counted scans (certificate_id, day, visitor, site_id, signed_in, count, times)."""
    if not rows:
        return
    # In key order: web workers flushing at once then lock shared rows in the same order and
    # one waits for the other's commit. In arrival order they deadlocked on PostgreSQL, and the
    # victim's request failed after deadlock_timeout (1 s) with its buffered scans lost.
    rows = sorted(rows, key=_row_key)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, CertificateScan.__table__)
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["certificate_id", "day", "visitor", "site_id"],
        set_={"count": table.c.count + stmt.excluded.count, "last_at": stmt.excluded.last_at},
    )
    # On the table, not the class: a Core executemany, without the ORM's per-row bulk work.
    session.connection().execute(stmt, rows)


def _row_key(row: dict[str, Any]) -> tuple[int, dt.date, str, str]:
    return (row["certificate_id"], row["day"], row["visitor"], row["site_id"])


def record_scan(
    session: Session,
    cert: Certificate,
    now: dt.datetime,
    tz: str,
    visitor: str,
    site_id: str | None,
    signed_in: bool = False,
) -> None:
    """Count one scan of a certificate by a visitor (and the market a signed-in one declared)."""
    day = now.astimezone(ZoneInfo(tz)).date()
    record_scans(session, [scan_row(cert.id, day, visitor, site_id, now, signed_in=signed_in)])


def scan_row(
    cert_id: int,
    day: dt.date,
    visitor: str,
    site_id: str | None,
    now: dt.datetime,
    count: int = 1,
    *,
    signed_in: bool = False,
) -> dict[str, Any]:
    """Return one row of counted scans (an anonymous scan never names a market)."""
    return {
        "certificate_id": cert_id,
        "day": day,
        "visitor": visitor,
        "site_id": (site_id or "") if signed_in else "",
        "signed_in": signed_in,
        "count": count,
        "first_at": now,
        "last_at": now,
    }


# Writes a batch of buffered scan rows (write_scans with the app's sessions).
Writer = Callable[[list[dict[str, Any]]], None]


def write_scans(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> None:
    """Write buffered scan rows in a transaction of their own."""
    with sessions() as session:
        try:
            record_scans(session, rows)
            session.commit()
            return
        except IntegrityError:
            session.rollback()
        # A row the database refuses for good (its certificate is gone) would otherwise sink its
        # whole batch on every retry: write the rows one by one and drop only the refused.
        refused = 0
        for row in rows:
            try:
                with session.begin_nested():
                    record_scans(session, [row])
            except IntegrityError:
                refused += 1
        session.commit()
    if refused:
        _LOGGER.warning("Dropped %d buffered scans of certificates no longer stored", refused)


class ScanBuffer:
    """Scans counted in memory and written in batches, at most flush_s seconds late.

    With flush_s > 0 a thread of the process writes them (start), off the request path; at
    interpreter exit (a gunicorn worker's too) stop writes what is left. A failed write keeps
    its scans for the next one: none is lost while the process lives.
    """

    def __init__(self, flush_s: float, write: Writer, max_rows: int = MAX_ROWS) -> None:
        """Write with write, at most every flush_s seconds (0: the caller flushes every scan)."""
        self.flush_s = flush_s
        self.write = write
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one write at a time, in the order taken
        self._rows: dict[tuple[int, dt.date, str, str], dict[str, Any]] = {}
        self._last = time.monotonic()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(
        self,
        cert_id: int,
        day: dt.date,
        visitor: str,
        site_id: str | None,
        now: dt.datetime,
        signed_in: bool = False,
    ) -> None:
        """Count one scan."""
        row = scan_row(cert_id, day, visitor, site_id, now, signed_in=signed_in)
        key = (cert_id, day, visitor, row["site_id"])
        with self._lock:
            if key not in self._rows:
                self._rows[key] = row
                if len(self._rows) >= self.max_rows:
                    self._wake.set()  # full: the writer need not wait for its tick
            else:
                self._rows[key]["count"] += 1
                self._rows[key]["last_at"] = now

    def due(self) -> bool:
        """Whether the buffered scans should be written now."""
        return bool(self._rows) and time.monotonic() - self._last >= self.flush_s

    def take(self) -> list[dict[str, Any]]:
        """Hand over the buffered rows (the caller writes them)."""
        with self._lock:
            rows, self._rows = list(self._rows.values()), {}
            self._last = time.monotonic()
        return rows

    def give_back(self, rows: list[dict[str, Any]]) -> None:
        """Count again rows whose write failed, merged with the scans buffered since."""
        with self._lock:
            for row in rows:
                kept = self._rows.setdefault(_row_key(row), row)
                if kept is not row:
                    kept["count"] += row["count"]
                    kept["first_at"] = min(kept["first_at"], row["first_at"])
                    kept["last_at"] = max(kept["last_at"], row["last_at"])

    def flush(self) -> bool:
        """Write the buffered rows now; whether any were written."""
        with self._writing:
            rows = self.take()
            if not rows:
                return False
            try:
                self.write(rows)
            except BaseException:
                self.give_back(rows)
                raise
        return True

    def start(self) -> None:
        """Write from a thread of this process from now on (once per process: workers fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="scan-writer", daemon=True)
            self._thread.start()
            atexit.register(self.stop)
            self._pid = os.getpid()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for the next tick; the database may be back by then
                _LOGGER.exception("Could not write buffered scans; kept for the next try")

    def stop(self) -> None:
        """Stop the writer thread and write what is left (at exit, or when the app closes)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            self._thread, self._pid = None, 0  # a later scan starts a new writer
            atexit.unregister(self.stop)  # nor is the app kept alive until exit
        try:
            self.flush()
        except Exception as exc:  # the database may already be gone at exit
            _LOGGER.error("Could not write the last buffered scans: %s", exc)


@dataclass(frozen=True, slots=True)
class ScanStats:
    """How often and where a certificate was scanned or checked.

    `visitors` and `markets` count only evidence fangxin can attribute (§5): signed-in scans
    and entry checks. Anonymous scans are logged (`scans`, `anonymous_visitors`) but an
    anonymous caller chooses its `?m=` and its address, so they never raise the flag.
    """

    scans: int
    visitors: int
    markets: int
    plausible_visitors: int
    anonymous_visitors: int = 0

    @property
    def copy_suspected(self) -> bool:
        """Whether the attributable pattern suggests the code was copied onto other goods."""
        return self.visitors > self.plausible_visitors or self.markets > MAX_MARKETS


def plausible_visitors(cert: Certificate) -> int:
    """Return how many distinct visitor-days a lot of this size plausibly draws."""
    per = PER_UNIT.get(cert.unit, PER_PIECE)
    return PLAUSIBLE_FLOOR + int(per * cert.quantity_milli / 1000)


def scan_stats(session: Session, cert: Certificate) -> ScanStats:
    """Return a certificate's scan and market counts."""
    mine = CertificateScan.certificate_id == cert.id
    # A visitor pseudonym is keyed by its day, so distinct pseudonyms are distinct visitor-days.
    scans, visitors, anonymous = session.execute(
        select(
            func.coalesce(func.sum(CertificateScan.count), 0),
            func.count(func.distinct(case((CertificateScan.signed_in, CertificateScan.visitor)))),
            func.count(func.distinct(case((~CertificateScan.signed_in, CertificateScan.visitor)))),
        ).where(mine)
    ).one()
    sites = session.scalars(
        select(CertificateScan.site_id)
        .where(mine, CertificateScan.signed_in, CertificateScan.site_id != "")
        .union(select(EntryCheck.site_id).where(EntryCheck.certificate_id == cert.id))
    ).all()
    return ScanStats(
        int(scans or 0), int(visitors or 0), len(sites), plausible_visitors(cert), int(anonymous)
    )


def copy_suspected(session: Session, cert: Certificate, now: dt.datetime) -> bool:
    """Whether a certificate's scans or markets make a copied code likely."""
    return scan_stats(session, cert).copy_suspected
