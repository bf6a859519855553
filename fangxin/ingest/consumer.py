"""The MQTT ingester: batched durable writes in arrival order, acks after the write.

Its broker link (persistent session, reconnects, the network loop) is fangxin.ingest.link.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.acks import ack_batch
from fangxin.ingest.batch import Batch, BatchStats, RawMessage
from fangxin.ingest.link import BrokerLink
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.storing import store_batch
from fangxin.ingest.writer import BatchWriter

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Inbound:
    raw: RawMessage
    mid: int
    qos: int
    generation: int


@dataclass(frozen=True, slots=True)
class _Handed:
    """A batch handed to the writer: its messages, and what the network thread made of them."""

    inbounds: list[_Inbound]
    prepared: Batch | None


class Ingester(BrokerLink):
    """Consumes fangxin/v1 messages and stores each exactly once before acknowledging it."""

    def __init__(
        self,
        broker: BrokerAddress,
        session_factory: sessionmaker[Session],
        pipeline: Pipeline,
        *,
        client_id: str,
        shared_group: str | None = None,
        max_inflight: int = 4000,
        batch_size: int = 2000,
        flush_ms: int = 50,
        session_expiry_s: int = 86400,
        protocol: str = "auto",
    ) -> None:
        """Prepare an ingester; nothing connects until start()."""
        super().__init__(
            broker,
            client_id=client_id,
            shared_group=shared_group,
            max_inflight=max_inflight,
            session_expiry_s=session_expiry_s,
            protocol=protocol,
        )
        self.session_factory = session_factory
        self.pipeline = pipeline
        self.batch_size = min(batch_size, max_inflight)
        self.flush_s = flush_ms / 1000
        self.stats = BatchStats()
        self._pending: list[_Inbound] = []
        self._in_writer = 0  # messages handed to the writer and not yet acked
        self._first_at = 0.0
        self._writer: BatchWriter[_Handed] | None = None

    def _keep(self, topic: str, payload: bytes, retained: bool, mid: int, qos: int) -> None:
        # Called from inside loop() on our own thread: stamp and keep, nothing that blocks.
        if self._stop.is_set():
            return  # draining: left unacked, the broker redelivers it to the resumed session
        pending = self._pending
        if not pending:
            self._first_at = time.monotonic()
        raw = RawMessage(topic, payload, dt.datetime.now(dt.UTC), retained)
        pending.append(_Inbound(raw, mid, qos, self._generation))

    def _wanted(self) -> int:
        return min(self.batch_size - len(self._pending), self._room())

    def _room(self) -> int:
        """Return how many more messages may wait unacknowledged in memory."""
        return self.max_inflight - len(self._pending) - self._in_writer

    def _prepare(self, batch: list[_Inbound]) -> _Handed:
        """Parse and judge a batch here, on the network thread, while the writer waits on I/O."""
        raws = [i.raw for i in batch]
        try:
            with self.session_factory() as session:  # lookups only, cached for seconds
                return _Handed(batch, self.pipeline.prepare(session, raws))
        except Exception:  # noqa: BLE001 - the writer's own attempt meets it and deals with it
            _LOGGER.debug("Batch not prepared ahead; the writer prepares it", exc_info=True)
            return _Handed(batch, None)

    def _store(self, handed: _Handed) -> None:
        # On the writer thread: a retry waits with sleep while the network thread pumps.
        raws = [i.raw for i in handed.inbounds]
        store_batch(
            self.session_factory, self.pipeline, self.stats, raws, time.sleep, handed.prepared
        )

    def _ack(self, batch: list[_Inbound]) -> None:
        client = self._client
        if client is None or not self._connected.is_set():
            return  # the broker redelivers the batch to the resumed session; dedupe absorbs it
        generation = self._generation
        # An ack for a message of an earlier connection would hit a reused packet id; the
        # broker redelivers that message on the resumed session and dedupe absorbs it.
        ack_batch(
            client, [(i.mid, i.qos) for i in batch if i.qos > 0 and i.generation == generation]
        )

    def run(self) -> BatchStats:
        """Process until stop() is called, then drain what was received, ack it and disconnect.

        This thread owns the network loop and the acks; a writer thread stores the batches in
        arrival order, so the loop reads the next batch while the database works on the last.
        At most max_inflight messages wait unacknowledged in memory: the broker's Receive
        Maximum, enforced here too, since a broker may send past it (Mosquitto 2.0.11 does
        once acks flow); while full, the socket is left unread and TCP holds the broker back.
        """
        if self._client is None:
            self.start()
        client = self._client
        writer = self._writer = BatchWriter(self._store, client.wake if client else lambda: None)
        writer.start()
        pending = self._pending
        last_log = time.monotonic()
        try:
            while True:
                for stored in writer.take_stored():
                    self._in_writer -= len(stored.inbounds)
                    self._ack(stored.inbounds)
                stopping = self._stop.is_set()
                wait = 0.1
                if pending:
                    wait = self._first_at + self.flush_s - time.monotonic()
                    # Past the flush time a short batch waits for an idle writer: one commit
                    # then carries whatever arrived meanwhile.
                    if (
                        len(pending) >= self.batch_size
                        or stopping
                        or (wait <= 0 and not writer.outstanding)
                    ):
                        batch = pending[: self.batch_size]
                        del pending[: self.batch_size]
                        self._first_at = time.monotonic()
                        self._in_writer += len(batch)
                        writer.submit(self._prepare(batch))
                        continue
                elif stopping and not writer.outstanding:
                    break
                if writer.outstanding:
                    wait = min(wait, 0.05) if wait > 0 else 0.05  # woken when a batch is stored
                if self._room() <= 0 and client is not None:
                    # Full: the socket stays unread (TCP holds the broker back) until a batch
                    # is stored; the broker still hears a ping, so a stalled database does not
                    # cost the link.
                    writer.wait_stored(wait)
                    client.ping_unread()
                else:
                    self._pump(wait)
                if time.monotonic() - last_log > 10:
                    last_log = time.monotonic()
                    _LOGGER.info("Ingested so far: %s", self.stats)
        finally:
            writer.close()
        self._close()
        _LOGGER.info("Ingester stopped: %s", self.stats)
        return self.stats

    def _close(self) -> None:
        self._disconnect()
        self.pipeline.sink.close()
