"""Wiring of one ingester process: settings → database, sink, pipeline, MQTT consumer, watchdog."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
import time
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.contract.payloads import Limits
from fangxin.db import check_migrated, make_engine, make_session_factory, utcnow
from fangxin.devices.models import MQTT_DOOR
from fangxin.devices.observation import close_run, open_run, touch_run
from fangxin.devices.sweep import restart_grace, sweep
from fangxin.ingest.consumer import Ingester
from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.outbox import OutboxRelay
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import PointSink, SqlSink
from fangxin.startup import freeze_startup_heap
from fangxin.trace.plan import camera_days

_LOGGER = logging.getLogger(__name__)
OFFLINE_ALARM_AFTER = dt.timedelta(minutes=30)
# Settled days with outages stored per tick while some are missing: a day of 10,000 cameras'
# 100,000 outages takes its passes 0.8-1.7 s on SQLite, 1.2 s on PostgreSQL (bench/uptime.py),
# and the tick also keeps the runs.
DAYS_PER_TICK = 1


def make_sink(settings: Settings, sessions: sessionmaker[Session]) -> PointSink:
    """Return the InfluxDB sink (rejected spooled lines dead-lettered through sessions) or SQL's.

    Only the ingester process builds one: web processes write to SQL or to the outbox.
    """
    if settings.influx_url:
        sink = InfluxSink.from_settings(settings)
        sink.set_session_factory(sessions)
        return sink
    return SqlSink()


def build_ingester(
    settings: Settings, shared_group: str | None = None, client_id: str | None = None
) -> Ingester:
    """Assemble an ingester; refuses a database that is not migrated."""
    if not settings.mqtt_url:
        raise SystemExit("FANGXIN_MQTT_URL is not set: the ingester needs a broker")
    engine = make_engine(settings.database_url)
    check_migrated(engine)
    limits = Limits(
        max_bytes=settings.max_payload_bytes,
        max_items=settings.max_array_items,
        max_skew=dt.timedelta(seconds=settings.max_clock_skew_s),
    )
    sessions = make_session_factory(engine)
    return Ingester(
        BrokerAddress.parse(settings.mqtt_url),
        sessions,
        Pipeline(
            make_sink(settings, sessions),
            limits,
            storage_low_gb=settings.storage_low_gb,
            interval_caps=settings.interval_caps,
        ),
        client_id=client_id or settings.ingest_client_id,
        shared_group=shared_group,
        max_inflight=settings.ingest_max_inflight,
        batch_size=settings.ingest_batch_size,
        flush_ms=settings.ingest_flush_ms,
        session_expiry_s=settings.session_expiry_s,
        protocol=settings.mqtt_protocol,
    )


class Watchdog(threading.Thread):
    """Records when the ingester observes (connected runs) and runs the timeout sweep."""

    def __init__(
        self,
        ingester: Ingester,
        sessions: sessionmaker[Session] | None = None,
        *,
        tick_s: float = 1.0,
        alive_every_s: float = 10.0,
        alarm_after: dt.timedelta = OFFLINE_ALARM_AFTER,
        tz: str | None = None,
        days_every_s: float = 60.0,
    ) -> None:
        """Watch an ingester; sessions default to the ingester's; tz: keep the camera days."""
        super().__init__(name="fangxin-watchdog", daemon=True)
        self.ingester = ingester
        self.sessions = sessions or ingester.session_factory
        self.tick_s = tick_s
        self.alive_every_s = alive_every_s
        self.alarm_after = alarm_after
        self.run_id: int | None = None
        self._alive_at = 0.0
        self._stop_event = threading.Event()
        self.tz = tz
        self.days_every_s = days_every_s
        self._days_at = -days_every_s
        self._days_missing = 0

    def connected(self) -> bool:
        """Tell whether the ingester holds a broker connection."""
        return self.ingester._connected.is_set()

    def tick(self) -> None:
        """Open, touch or close the observed run, then sweep (one transaction); keep stored days."""
        now = utcnow()
        with self.sessions.begin() as session:
            if self.connected() and self.run_id is None:
                self.run_id, gap = open_run(session, self.ingester.client_id, now, door=MQTT_DOOR)
                self._alive_at = time.monotonic()
                if gap:  # we were not observing: no device may be timed out for our absence
                    restart_grace(session, now, MQTT_DOOR)
            elif self.connected() and time.monotonic() - self._alive_at >= self.alive_every_s:
                touch_run(session, self.run_id, now)  # type: ignore[arg-type]
                self._alive_at = time.monotonic()
            elif not self.connected() and self.run_id is not None:
                _LOGGER.warning("Ingester disconnected: time from now on is unobserved")
                close_run(session, self.run_id, now)
                self.run_id = None
            if self.run_id is not None:
                sweep(session, now, self.alarm_after, door=MQTT_DOOR)
        if self.tz and (
            self._days_missing or time.monotonic() - self._days_at >= self.days_every_s
        ):
            self._days_missing = camera_days.refresh(self.sessions, now, self.tz, DAYS_PER_TICK)
            self._days_at = time.monotonic()

    def run(self) -> None:
        """Tick until stopped; database trouble is logged and retried next tick."""
        while not self._stop_event.wait(self.tick_s):
            try:
                self.tick()
            except SQLAlchemyError as exc:
                _LOGGER.error("Watchdog tick failed (retrying): %s", exc)

    def stop(self) -> None:
        """Stop ticking and close the observed run."""
        self._stop_event.set()
        if self.is_alive():
            self.join(30)
        if self.run_id is not None:
            with self.sessions.begin() as session:
                close_run(session, self.run_id, utcnow())
            self.run_id = None


def start_watchdog(ingester: Ingester, **kwargs: float | dt.timedelta | str) -> Watchdog:
    """Open the observed run now (before any message is processed) and start ticking."""
    watchdog = Watchdog(ingester, **kwargs)  # type: ignore[arg-type]
    watchdog.tick()
    watchdog.start()
    return watchdog


def run(settings: Settings, shared_group: str | None = None, client_id: str | None = None) -> int:
    """Run one ingester until SIGTERM/SIGINT; drain, flush and return 0."""
    ingester = build_ingester(settings, shared_group, client_id)
    sink = ingester.pipeline.sink
    # Results posted over HTTP wait in the outbox for the process that owns the InfluxDB sink.
    relay = OutboxRelay(ingester.session_factory, sink) if isinstance(sink, InfluxSink) else None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("Signal %d: draining and stopping", signum)
        if relay is not None:
            relay.request_stop()
        ingester.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ingester.start()
    if relay is not None:
        relay.start()
    watchdog = start_watchdog(
        ingester,
        alarm_after=dt.timedelta(seconds=settings.offline_alarm_after_s),
        tz=settings.timezone,
    )
    freeze_startup_heap()  # the drain's full collections no longer walk the imported stack
    # The writer thread gives up the GIL at each of its 20-40 waits on the database per batch
    # and must win it back from the network thread, by default after up to 5 ms each time:
    # at 1 ms a PostgreSQL drain ran 5 % faster (bench/ingest.py, three runs each).
    sys.setswitchinterval(0.001)
    try:
        ingester.run()
    finally:
        watchdog.stop()
        if relay is not None:
            relay.stop()
    return 0
