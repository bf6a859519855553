"""Prometheus metrics: HTTP latency by route (this process) and ingest figures from the database.

The ingester is a separate process, so its rate, lag, dead letters and watchdog figures are read
from what it stored. The latency histograms live in a registry per app (and so per gunicorn
worker): scrape each worker, or read them as one worker's sample.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import time
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from fangxin.devices.models import Device, IngesterRun
from fangxin.ingest.models import DeadLetter, SecurityEvent
from fangxin.service.context import db_session, state
from fangxin.trace.results.models import RapidTestResult

# Spool file of the InfluxDB sink (fangxin.ingest.influx.InfluxSink.from_settings).
SPOOL_FILE = "influx-spool.db"
RECENT_RESULTS = 1000
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _seconds(delta: dt.timedelta) -> float:
    return delta.total_seconds()


def spool_depth(path: str) -> int | None:
    """Count the lines waiting in a spool file, opened read-only; None when there is none."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT COUNT(*) FROM spooled_lines").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


class DatabaseCollector(Collector):
    """Figures the ingester leaves in the database, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        """Query the database and yield the gauges."""
        session, now = db_session(), state().clock()
        for name, model, help_text in (
            ("fangxin_rapid_test_results", RapidTestResult, "Rapid-test results stored"),
            ("fangxin_dead_letters", DeadLetter, "Messages refused with a reason"),
            (
                "fangxin_security_events",
                SecurityEvent,
                "Messages from unknown or misplaced devices",
            ),
            ("fangxin_devices", Device, "Registered devices"),
        ):
            yield _gauge(
                name, help_text, session.scalar(select(func.count()).select_from(model)) or 0
            )
        by_source = GaugeMetricFamily(
            "fangxin_dead_letters_by_source", "Dead letters by door", labels=["source"]
        )
        rows = session.execute(select(DeadLetter.source, func.count()).group_by(DeadLetter.source))
        for source, n in rows:
            by_source.add_metric([source], n)
        yield by_source
        minute = session.scalar(
            select(func.count())
            .select_from(RapidTestResult)
            .where(RapidTestResult.received_at >= now - dt.timedelta(minutes=1))
        )
        yield _gauge(
            "fangxin_ingest_results_last_minute", "Results received in the last minute", minute or 0
        )
        yield _gauge(
            "fangxin_ingest_rate_per_second", "Results per second, last minute", (minute or 0) / 60
        )
        latest = session.scalar(select(func.max(RapidTestResult.received_at)))
        if latest is not None:
            yield _gauge(
                "fangxin_ingest_last_received_age_seconds",
                "Seconds since the newest result was received",
                _seconds(now - latest),
            )
        recent = session.execute(
            select(RapidTestResult.received_at, RapidTestResult.ts)
            .order_by(RapidTestResult.id.desc())
            .limit(RECENT_RESULTS)
        ).all()
        if recent:
            yield _gauge(
                "fangxin_ingest_lag_p50_seconds",
                f"Median received_at - ts over the last {RECENT_RESULTS} results",
                statistics.median(_seconds(r - t) for r, t in recent),
            )
        yield from self._watchdog(now)
        depth = spool_depth(str(state().settings.data_dir / SPOOL_FILE))
        if state().settings.influx_url and depth is not None:
            yield _gauge("fangxin_influx_spool_depth", "Lines waiting in the InfluxDB spool", depth)

    def _watchdog(self, now: dt.datetime) -> Iterator[Metric]:
        session = db_session()
        open_runs = select(IngesterRun).where(IngesterRun.ended_at.is_(None)).subquery()
        observing = session.scalar(select(func.count()).select_from(open_runs)) or 0
        yield _gauge(
            "fangxin_ingesters_observing", "Ingesters with an open observed run", observing
        )
        alive = session.scalar(select(func.max(open_runs.c.last_alive_at)))
        if alive is not None:
            # The watchdog sweeps every tick and records its liveness every few seconds.
            yield _gauge(
                "fangxin_sweep_last_alive_age_seconds",
                "Seconds since an ingester's watchdog (timeout sweep) last recorded itself",
                _seconds(now - alive),
            )


def init_app(app: Flask) -> None:
    """Give the app a registry with the HTTP latency histogram and the database collector."""
    registry = CollectorRegistry()
    latency = Histogram(
        "fangxin_http_request_duration_seconds",
        "HTTP request latency by route",
        ["method", "route", "status"],
        registry=registry,
        buckets=BUCKETS,
    )
    registry.register(DatabaseCollector())
    app.extensions["fangxin_metrics"] = registry

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            latency.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response


def render() -> Response:
    """Render this app's registry in the Prometheus text format."""
    registry: CollectorRegistry = current_app.extensions["fangxin_metrics"]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
