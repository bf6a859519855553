"""InfluxDB 2.x sink: synchronous gzip writes, Telegraf-style status handling, a durable spool."""

# Why it is built this way:
# - write() must not return before its points are durable (the MQTT acks follow it), so writes
#   are synchronous; the influxdb-client batching buffer lives in memory and loses data.
# - Order: while the spool holds anything, new points are appended behind it; only the replay
#   thread writes spooled lines, oldest first, and deletes them after InfluxDB's 204.
# - Statuses (fangxin.ingest.influx_delivery) as Telegraf's influxdb_v2 output, except that
#   nothing is dropped silently: a single rejected line becomes a dead letter, 401/403/404 keep
#   the points (spool) and raise problem(). 429/5xx retry within retry_budget_s (10 s by default,
#   so the ingester blocks briefly at most); no answer at all (refused, timeout) spools at once.
# - Rejected spooled lines are dead-lettered by the replay thread in its own short session when
#   set_session_factory() was called; otherwise they are logged at ERROR and counted. A line is
#   deleted from the spool only after its dead letter committed (so a crash may record it twice).

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fangxin.config import ConfigError, Settings
from fangxin.ingest.influx_delivery import Delivery, Outcome
from fangxin.ingest.lineproto import measurement_of, to_line
from fangxin.ingest.models import DeadLetter
from fangxin.ingest.sinks import Point
from fangxin.ingest.spool import Spool

_LOGGER = logging.getLogger(__name__)


class InfluxSink:
    """PointSink writing to InfluxDB; what cannot be written now waits in a local durable spool."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        spool_path: Path | str,
        *,
        batch_lines: int = 5000,
        retry_budget_s: float = 10.0,
        timeout_s: float = 5.0,
        replay_min_backoff_s: float = 1.0,
        replay_max_backoff_s: float = 60.0,
    ) -> None:
        """Connect lazily to InfluxDB, open the spool and start the replay thread."""
        self.url, self.org, self.bucket = url, org, bucket
        self.batch_lines = batch_lines
        self.retry_budget_s = retry_budget_s
        self.timeout_s = timeout_s
        self.replay_min_backoff_s = replay_min_backoff_s
        self.replay_max_backoff_s = replay_max_backoff_s
        self._stop = threading.Event()
        self._delivery = Delivery(
            url, token, org, bucket, batch_lines=batch_lines, timeout_s=timeout_s, stop=self._stop
        )
        self._spool = Spool(spool_path)
        self._session_factory: Callable[[], Session] | None = None
        self._write_lock = threading.Lock()  # one direct write at a time: keeps order
        self._state_lock = threading.Lock()
        self._counts = {"written": 0, "spooled": 0, "dead": 0}
        self._closed = False
        self._wake = threading.Event()
        self._next_attempt = 0.0  # monotonic time before which the replay thread waits
        self._thread = threading.Thread(target=self._replay_loop, name="influx-replay", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> InfluxSink:
        """Build the sink from FANGXIN_INFLUX_*; the spool lives in the data dir."""
        url, token = settings.influx_url, settings.influx_token
        org, bucket = settings.influx_org, settings.influx_bucket
        if not (url and token and org and bucket):
            raise ConfigError("InfluxDB needs FANGXIN_INFLUX_URL, _TOKEN, _ORG and _BUCKET")
        return cls(url, token, org, bucket, settings.data_dir / "influx-spool.db", **kwargs)

    def set_session_factory(self, factory: Callable[[], Session] | None) -> None:
        """Let the replay thread record rejected spooled points as dead letters in SQL."""
        self._session_factory = factory

    # -- counters for metrics ---------------------------------------------------------------

    @property
    def points_written(self) -> int:
        """Points InfluxDB accepted (204), directly or from the spool."""
        return self._counts["written"]

    @property
    def points_spooled(self) -> int:
        """Points appended to the spool since start."""
        return self._counts["spooled"]

    @property
    def points_dead(self) -> int:
        """Points refused for good (dead letters or, without a session factory, logged)."""
        return self._counts["dead"]

    @property
    def spool_depth(self) -> int:
        """Points waiting in the spool now."""
        return self._spool.depth()

    def stats(self) -> dict[str, int]:
        """Return all counters at once."""
        return {
            **{f"points_{k}": v for k, v in self._counts.items()},
            "spool_depth": self.spool_depth,
        }

    # -- PointSink ----------------------------------------------------------------------------

    def write(self, session: Session, points: Sequence[Point]) -> None:
        """Return once every point is in InfluxDB, in the spool, or a dead letter in session."""
        lines: list[str] = []
        dead: list[tuple[str | None, str, str]] = []  # (topic, payload, reason)
        for point in points:
            try:
                lines.append(to_line(point))
            except ValueError as exc:
                dead.append((point.measurement, repr(point), f"not storable in InfluxDB: {exc}"))
        self._write(session, lines, dead)

    def write_lines(self, session: Session, lines: Sequence[str]) -> None:
        """Write lines already rendered (the web processes' outbox) like write()."""
        self._write(session, lines, [])

    def _write(
        self, session: Session, lines: Sequence[str], dead: list[tuple[str | None, str, str]]
    ) -> None:
        with self._write_lock:
            if self._closed:
                raise RuntimeError("InfluxSink is closed")
            if self._spool.depth():
                self._to_spool(lines)  # older points wait there: never jump ahead of them
            elif lines:
                out = self._delivery.deliver(lines, time.monotonic() + self.retry_budget_s)
                dead += [(measurement_of(lines[i]), lines[i], why) for i, why in out.rejected]
                self._count("written", len(out.written))
                if out.unsent_from is not None:
                    delay = out.retry_after or self.replay_min_backoff_s
                    self._next_attempt = max(self._next_attempt, time.monotonic() + delay)
                    self._to_spool(lines[out.unsent_from :])
        if dead:  # in the caller's transaction, committed with the rest of its batch
            session.add_all(self._dead_letters(dead))
            self._count("dead", len(dead))

    def problem(self) -> str | None:
        """Return an operator-facing reason when InfluxDB refuses us or is down with a backlog."""
        health = self._delivery.health()
        if health is None:
            return None
        kind, message, since = health
        depth = self._spool.depth()
        if kind == "refused":
            return (
                f"InfluxDB {self.url} refuses writes to bucket {self.bucket!r} "
                f"(check token, org, bucket): {message}; {depth} points kept in {self._spool.path}"
            )
        if depth:
            return (
                f"InfluxDB {self.url} unavailable since {since:%Y-%m-%d %H:%M:%SZ}: {message}; "
                f"{depth} points waiting in {self._spool.path}"
            )
        return None

    def close(self) -> None:
        """Stop the replay thread, then close the client and the spool (which keeps its lines)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(self.timeout_s + 5)
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._delivery.close()
            self._spool.close()

    # -- replay ------------------------------------------------------------------------------

    def replay_now(self) -> None:
        """Make the replay thread try at once, skipping its backoff (e.g. after a fix)."""
        self._next_attempt = 0.0
        self._wake.set()

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait until the spool is empty; return whether it is."""
        deadline = time.monotonic() + timeout_s
        while self._spool.depth() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._spool.depth() == 0

    def _replay_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            delay = self._next_attempt - time.monotonic()
            if not self._spool.depth() or delay > 0:
                # Woken by appends, replay_now() and close(); spurious wakes just loop.
                self._wake.wait(delay if delay > 0 else 5.0)
                self._wake.clear()
                continue
            try:
                out = self._replay_once()
            except Exception:
                _LOGGER.exception("Replaying the InfluxDB spool failed")
                out = Outcome(unsent_from=0)
            if out.unsent_from is None:
                failures = 0
                continue
            failures += 1
            backoff = self.replay_min_backoff_s * 2 ** min(failures - 1, 16)
            delay = max(out.retry_after or 0.0, min(backoff, self.replay_max_backoff_s))
            self._next_attempt = time.monotonic() + delay

    def _replay_once(self) -> Outcome:
        rows = self._spool.peek(self.batch_lines)
        lines = [line for _, line in rows]
        out = self._delivery.deliver(lines, time.monotonic())  # no waiting: the loop backs off
        done = list(out.written)
        rejected = [(measurement_of(lines[i]), lines[i], why) for i, why in out.rejected]
        if rejected and self._store_dead(rejected):
            done += [i for i, _ in out.rejected]
        self._spool.delete(rows[i][0] for i in done)
        self._count("written", len(out.written))
        if rows and not self._spool.depth():
            _LOGGER.info("InfluxDB spool drained")
        return out

    def _store_dead(self, dead: list[tuple[str | None, str, str]]) -> bool:
        factory = self._session_factory
        if factory is None:
            for _, line, reason in dead:
                _LOGGER.error("No dead-letter store; dropping spooled point (%s): %s", reason, line)
        else:
            try:
                with factory() as session, session.begin():
                    session.add_all(self._dead_letters(dead))
            except Exception:
                # Kept in the spool: the next replay is rejected again and retries the store.
                _LOGGER.exception("Could not record %d rejected spooled points", len(dead))
                return False
        self._count("dead", len(dead))
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def _to_spool(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        self._spool.append(lines)
        self._count("spooled", len(lines))
        self._wake.set()

    def _count(self, name: str, n: int) -> None:
        with self._state_lock:
            self._counts[name] += n

    @staticmethod
    def _dead_letters(dead: Iterable[tuple[str | None, str, str]]) -> list[DeadLetter]:
        rows = []
        for topic, payload, reason in dead:
            _LOGGER.warning("InfluxDB point dead-lettered (%s): %s", reason, payload)
            rows.append(DeadLetter(source="influx", topic=topic, payload=payload, reason=reason))
        return rows
