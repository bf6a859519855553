"""Time series from web processes: an outbox table in their transaction, relayed by the ingester.

Why: a web worker must not own an InfluxDB client, a spool file or a replay thread (several
workers would share one spool). Results posted over HTTP are stored with their points as lines
in `series_outbox`, committed with the results; the ingester's relay hands them to its InfluxDB
sink (which spools what InfluxDB cannot take) and deletes them in one transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.lineproto import to_line
from fangxin.ingest.models import DeadLetter, SeriesOutbox
from fangxin.ingest.sinks import Point

_LOGGER = logging.getLogger(__name__)


class LineSink(Protocol):
    """A sink that takes rendered lines (InfluxSink)."""

    def write_lines(self, session: Session, lines: Sequence[str]) -> None:
        """Store the lines durably; the session is the caller's open transaction."""


class OutboxSink:
    """PointSink of web processes when InfluxDB is configured: lines into the outbox table."""

    def write(self, session: Session, points: Sequence[Point]) -> None:
        """Add the points' lines to the caller's transaction; unrenderable ones are dead letters."""
        lines: list[dict[str, str]] = []
        for point in points:
            try:
                lines.append({"line": to_line(point)})
            except ValueError as exc:
                session.add(
                    DeadLetter(
                        source="outbox",
                        topic=point.measurement,
                        payload=repr(point),
                        reason=f"not storable in InfluxDB: {exc}",
                    )
                )
        if lines:
            session.execute(insert(SeriesOutbox), lines)

    def problem(self) -> str | None:
        """Return None: the outbox is healthy whenever the database is."""
        return None

    def close(self) -> None:
        """Release nothing: the outbox holds no resources."""


def relay_once(session: Session, sink: LineSink, limit: int = 5000) -> int:
    """Move up to limit outbox lines, oldest first, into sink; return how many moved."""
    rows = session.execute(
        select(SeriesOutbox.id, SeriesOutbox.line).order_by(SeriesOutbox.id).limit(limit)
    ).all()
    if not rows:
        return 0
    sink.write_lines(session, [row.line for row in rows])
    session.execute(delete(SeriesOutbox).where(SeriesOutbox.id <= rows[-1].id))
    return len(rows)


class OutboxRelay(threading.Thread):
    """The ingester's thread that empties the outbox into its InfluxDB sink."""

    def __init__(
        self, sessions: sessionmaker[Session], sink: LineSink, every_s: float = 1.0
    ) -> None:
        """Relay through sink every every_s seconds (at once again while lines remain)."""
        super().__init__(name="fangxin-outbox-relay", daemon=True)
        self.sessions, self.sink, self.every_s = sessions, sink, every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Relay until stopped; database trouble is logged and retried."""
        while not self._stop_event.is_set():
            try:
                with self.sessions.begin() as session:
                    moved = relay_once(session, self.sink)
            except (SQLAlchemyError, RuntimeError) as exc:  # RuntimeError: the sink closed
                if self._stop_event.is_set():
                    return
                _LOGGER.error("Relaying the time-series outbox failed (retrying): %s", exc)
                moved = 0
            if not moved:
                self._stop_event.wait(self.every_s)

    def request_stop(self) -> None:
        """Ask the relay to stop after the current batch (safe in a signal handler)."""
        self._stop_event.set()

    def stop(self) -> None:
        """Stop relaying after the current batch and wait for it."""
        self._stop_event.set()
        if self.is_alive():
            self.join(30)
