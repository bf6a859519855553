"""What a request reaches: the app's state built once by create_app, and this request's session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.contract.payloads import Limits
from fangxin.db import make_reader, make_session_factory, utcnow
from fangxin.ingest.outbox import OutboxSink
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import PointSink, SqlSink
from fangxin.service.caches import FigureCache, PageCache
from fangxin.trace.certificates.issue_queue import IssueQueue
from fangxin.trace.certificates.page_changes import read_changes
from fangxin.trace.certificates.scans import ScanBuffer, write_scans
from fangxin.trace.certificates.signing import Signer, signer_from_settings
from fangxin.trace.notify.dispatch import BackgroundSender, Backoff, Dispatcher

MAX_RESULTS = 1000  # results in one POST /api/v1/results


@dataclass(slots=True)
class AppState:
    """What every request may need, built once per app from Settings."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # The engine (and its sessions) of read-only doors, the scan page: autocommit on the same
    # pool, so a read costs its queries alone, no BEGIN and ROLLBACK round trips (PostgreSQL's
    # READ COMMITTED gives each statement its own snapshot either way; pysqlite begins only
    # before writes).
    reader: Engine
    reads: sessionmaker[Session]
    signer: Signer
    # Concurrent POST /certificates of this process share transactions and commits.
    issuer: IssueQueue
    # The HTTP results door: its registry and catalogue caches live per process. Its points go
    # to SQL, or to the outbox the ingester relays to InfluxDB: never a sink of its own.
    results: Pipeline
    # Sends webhooks after a commit; its thread starts on first use, so each worker has its own.
    webhooks: BackgroundSender
    scan_pages: PageCache
    scan_buffer: ScanBuffer
    figures: FigureCache
    # Returns the document /openapi.json serves (the app factory knows every blueprint).
    openapi_document: Callable[[], dict[str, Any]]
    # "Now" for every handler, page, audit row and metric: the time rules are judged at. Set once
    # by create_app; tests pass a clock they move to reach the edges (midnight, deadlines).
    clock: Callable[[], dt.datetime] = utcnow

    def close(self) -> None:
        """Stop this process's background writers, writing what they hold (tests, shutdown)."""
        self.scan_buffer.stop()
        self.webhooks.stop()


def build_state(
    settings: Settings,
    engine: Engine,
    openapi_document: Callable[[], dict[str, Any]],
    clock: Callable[[], dt.datetime] = utcnow,
) -> AppState:
    """Build the app's state from settings; opens no file or thread of the ingester's."""
    sessions = make_session_factory(engine)
    reader = make_reader(engine)
    sink: PointSink = OutboxSink() if settings.influx_enabled else SqlSink()
    limits = Limits(max_items=MAX_RESULTS, max_skew=dt.timedelta(seconds=settings.max_clock_skew_s))
    # Its writer thread starts with a worker's first scan and writes what is left at exit.
    scan_buffer = ScanBuffer(settings.scan_flush_s, partial(write_scans, sessions))
    signer = signer_from_settings(settings)
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reader=reader,
        reads=make_session_factory(reader),
        signer=signer,
        issuer=IssueQueue(signer, settings.timezone),
        results=Pipeline(sink, limits),
        webhooks=BackgroundSender(
            Dispatcher(
                sessions,
                Backoff(base_s=settings.webhook_backoff_s),
                allow_private=settings.webhooks_allow_private,
            )
        ),
        scan_pages=PageCache(settings.scan_cache_s, partial(read_changes, reader)),
        scan_buffer=scan_buffer,
        figures=FigureCache(settings.dashboard_cache_s),
        openapi_document=openapi_document,
        clock=clock,
    )


def state() -> AppState:
    """Return the running app's state."""
    app_state: AppState = current_app.extensions["fangxin"]
    return app_state


def db_session() -> Session:
    """Return this request's session; the handler commits, teardown closes."""
    if "db" not in g:
        g.db = state().sessions()
    session: Session = g.db
    return session


def read_session() -> Session:
    """Open this request's session on the autocommit reads, for a door that never writes in it."""
    if "db" not in g:
        g.db = state().reads()
    session: Session = g.db
    return session


def close_session(_exc: BaseException | None) -> None:
    """Close this request's session, if it opened one."""
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()
