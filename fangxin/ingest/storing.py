"""Storing one batch of messages: retried while the database is down, one by one if refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.batch import Batch, BatchStats, RawMessage, dead_letter
from fangxin.ingest.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)
# Errors that mean "the database is not reachable right now": retry the batch, never drop it.
_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)


def store_batch(
    sessions: sessionmaker[Session],
    pipeline: Pipeline,
    stats: BatchStats,
    raws: list[RawMessage],
    idle: Callable[[float], None],
    prepared: Batch | None = None,
) -> None:
    """Store raws in one transaction, retrying until the database takes them; idle(s) waits.

    prepared (pipeline.prepare() of raws) serves the first attempt: a failed write may have
    changed it, so a retry prepares the messages again.
    """
    delay = 0.5
    while True:
        try:
            try:
                with sessions.begin() as session:
                    stats.add(pipeline.process(session, raws, prepared=prepared))
            except _TRANSIENT:
                raise
            except Exception:
                _LOGGER.exception(
                    "Batch failed to store; storing its %d messages one by one", len(raws)
                )
                _store_singly(sessions, pipeline, stats, raws)  # a transient error: retried
            return
        except _TRANSIENT as exc:
            prepared = None
            # Nothing is acked, so nothing is lost: the broker holds the messages meanwhile;
            # what was stored already is deduplicated when the batch is tried again.
            _LOGGER.error("Database unavailable, retrying batch in %.1fs: %s", delay, exc)
            until = time.monotonic() + delay
            while (left := until - time.monotonic()) > 0:
                idle(min(left, 1.0))
            delay = min(delay * 2, 30.0)


def _store_singly(
    sessions: sessionmaker[Session], pipeline: Pipeline, stats: BatchStats, raws: list[RawMessage]
) -> None:
    # A message that breaks a batch (a value the database refuses) must not block the stream.
    for raw in raws:
        try:
            with sessions.begin() as session:
                stats.add(pipeline.process(session, [raw]))
        except _TRANSIENT:
            raise
        except Exception as exc:
            with sessions.begin() as session:
                dead_letter(session, raw, f"storage refused the message: {exc}"[:2000])
            stats.dead_letters += 1
