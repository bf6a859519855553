"""Wiring of one ingester process: settings → database, sink, pipeline, MQTT consumer."""

from __future__ import annotations

import datetime as dt
import logging
import signal
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import check_migrated, make_engine, make_session_factory
from fangxin.ingest.consumer import Ingester
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.payloads import Limits
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import PointSink, SqlSink

_LOGGER = logging.getLogger(__name__)


def make_sink(settings: Settings, sessions: sessionmaker[Session]) -> PointSink:
    """Return the InfluxDB sink when configured, else the SQL sink."""
    if settings.influx_url:
        from fangxin.ingest.influx import InfluxSink

        influx = InfluxSink.from_settings(settings)
        # lines InfluxDB rejects during a later replay still become dead-letter rows
        influx.set_session_factory(sessions)
        return influx
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
        Pipeline(make_sink(settings, sessions), limits),
        client_id=client_id or settings.ingest_client_id,
        shared_group=shared_group,
        max_inflight=settings.ingest_max_inflight,
        batch_size=settings.ingest_batch_size,
        flush_ms=settings.ingest_flush_ms,
        session_expiry_s=settings.session_expiry_s,
        protocol=settings.mqtt_protocol,
    )


def run(settings: Settings, shared_group: str | None = None, client_id: str | None = None) -> int:
    """Run one ingester until SIGTERM/SIGINT; drain, flush and return 0."""
    ingester = build_ingester(settings, shared_group, client_id)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("Signal %d: draining and stopping", signum)
        ingester.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ingester.start()
    ingester.run()
    return 0
