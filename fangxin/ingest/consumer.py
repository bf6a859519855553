"""The MQTT ingester: persistent QoS 1 session, batched durable writes, acks after the write."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.orm import Session, sessionmaker

from fangxin.contract.topics import shared_subscription
from fangxin.ingest.acks import ack_batch
from fangxin.ingest.batch import BatchStats, RawMessage
from fangxin.ingest.fastclient import FastClient
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


class ConnectRefused(RuntimeError):
    """The broker refused our CONNECT for a reason retrying will not fix."""


class Ingester:
    """Consumes fangxin/v1 messages and stores each exactly once before acknowledging it."""

    def __init__(
        self,
        broker: BrokerAddress,
        session_factory: sessionmaker[Session],
        pipeline: Pipeline,
        *,
        client_id: str,
        shared_group: str | None = None,
        max_inflight: int = 1000,
        batch_size: int = 500,
        flush_ms: int = 50,
        session_expiry_s: int = 86400,
        protocol: str = "auto",
    ) -> None:
        """Prepare an ingester; nothing connects until start()."""
        self.broker = broker
        self.session_factory = session_factory
        self.pipeline = pipeline
        self.client_id = client_id
        self.subscription = shared_subscription(shared_group)
        self.max_inflight = max_inflight
        self.batch_size = min(batch_size, max_inflight)
        self.flush_s = flush_ms / 1000
        self.session_expiry_s = session_expiry_s
        self.protocols = {
            "auto": (MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311),
            "5": (MQTTProtocolVersion.MQTTv5,),
            "3.1.1": (MQTTProtocolVersion.MQTTv311,),
        }[protocol]
        self.stats = BatchStats()
        self.protocol: MQTTProtocolVersion | None = None
        self._pending: list[_Inbound] = []
        self._first_at = 0.0
        self._reconnect_delay = 1.0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connack: ReasonCode | None = None
        self._generation = 0
        self._client: FastClient | None = None
        self._writer: BatchWriter[_Inbound] | None = None

    # --- connection -------------------------------------------------------------------------

    def _make_client(self, protocol: MQTTProtocolVersion) -> FastClient:
        v5 = protocol == MQTTProtocolVersion.MQTTv5
        client = FastClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger("paho"))
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_qos1 = self._on_qos1
        client.on_subscribe = self._on_subscribe
        return client

    def _try_connect(self, protocol: MQTTProtocolVersion, timeout_s: float) -> FastClient | None:
        client = self._make_client(protocol)
        self._connack = None
        self._connected.clear()
        kwargs: dict[str, Any] = {"keepalive": 30}
        if protocol == MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry_s
            # The broker pushes at most this many unacked QoS 1 messages: our backpressure bound.
            props.ReceiveMaximum = self.max_inflight
            kwargs.update(clean_start=False, properties=props)
        try:
            client.connect(self.broker.host, self.broker.port, **kwargs)
        except OSError as exc:
            _LOGGER.warning("Cannot reach broker %s: %s", self.broker.url(), exc)
            return None
        # The calling thread runs the network loop until CONNACK and SUBACK (nothing else yet).
        deadline = time.monotonic() + timeout_s
        while self._connack is None and time.monotonic() < deadline:
            if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        code = self._connack
        if code is not None and not code.is_failure:
            self.protocol = protocol
            # Return once subscribed, so whoever started us can rely on messages being routed.
            while not self._subscribed.is_set() and time.monotonic() < deadline:
                client.loop(0.05)
            if not self._subscribed.is_set():
                _LOGGER.warning("No SUBACK within %.0fs; carrying on", timeout_s)
            return client
        client.disconnect()
        if code is not None and code.getName() in ("Bad user name or password", "Not authorized"):
            raise ConnectRefused(f"broker refused the ingester's credentials: {code}")
        _LOGGER.info("Connect with %s failed: %s", protocol.name, code or "no CONNACK")
        return None

    def start(self, timeout_s: float = 5.0) -> None:
        """Connect (MQTT 5, else 3.1.1) and subscribe; retry with backoff until stopped."""
        delay = 1.0
        while not self._stop.is_set():
            for protocol in self.protocols:
                client = self._try_connect(protocol, timeout_s)
                if client is not None:
                    if protocol == MQTTProtocolVersion.MQTTv311:
                        _LOGGER.warning(
                            "Connected to %s with MQTT 3.1.1, clean session off (no MQTT 5)",
                            self.broker.url(),
                        )
                    self._client = client
                    return
                if self._stop.is_set():
                    return
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._connack = reason_code
        if reason_code.is_failure:
            _LOGGER.error("Broker refused connection: %s", reason_code)
            return
        self._generation += 1
        self._reconnect_delay = 1.0
        _LOGGER.info(
            "Connected to %s as %s (session present: %s); subscribing %s",
            self.broker.url(),
            self.client_id,
            flags.session_present,
            self.subscription,
        )
        self._subscribed.clear()
        client.subscribe(self.subscription, qos=1)
        self._connected.set()

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            _LOGGER.error("Broker refused the subscription %s: %s", self.subscription, reason_codes)
            return
        self._subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if self._connack is None:
            self._connack = reason_code if reason_code.is_failure else None
        self._connected.clear()
        if not self._stop.is_set():
            _LOGGER.warning(
                "Disconnected from broker (%s); paho reconnects with backoff", reason_code
            )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._keep(msg.topic, bytes(msg.payload), msg.retain, msg.mid, msg.qos)

    def _on_qos1(self, topic: str, payload: bytes, retained: bool, mid: int) -> None:
        self._keep(topic, payload, retained, mid, 1)

    def _keep(self, topic: str, payload: bytes, retained: bool, mid: int, qos: int) -> None:
        # Called from inside loop() on our own thread: stamp and keep, nothing that blocks.
        if self._stop.is_set():
            return  # draining: left unacked, the broker redelivers it to the resumed session
        pending = self._pending
        if not pending:
            self._first_at = time.monotonic()
        raw = RawMessage(topic, payload, dt.datetime.now(dt.UTC), retained)
        pending.append(_Inbound(raw, mid, qos, self._generation))

    # --- processing -------------------------------------------------------------------------

    def _pump(self, timeout_s: float) -> None:
        """Run paho's network loop once (read, write, keepalive); reconnect if the link is down."""
        client = self._client
        if client is None:
            self._stop.wait(timeout_s)
            return
        if client.loop(timeout_s) == mqtt.MQTT_ERR_SUCCESS:
            # loop() reads one packet per select(); read on while the socket holds whole ones.
            pending = self._pending
            while len(pending) < self.batch_size:
                before = len(pending)
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or len(pending) == before:
                    break
            return
        if self._stop.is_set():
            return
        self._connected.clear()
        self._stop.wait(self._reconnect_delay)
        self._reconnect_delay = min(self._reconnect_delay * 2, 30.0)
        try:
            client.reconnect()  # CONNACK and re-subscription follow in the next loop() calls
        except OSError as exc:
            _LOGGER.warning("Cannot reach broker %s: %s", self.broker.url(), exc)

    def _store(self, batch: list[_Inbound]) -> None:
        # On the writer thread: a retry waits with sleep while the network thread pumps.
        store_batch(
            self.session_factory, self.pipeline, self.stats, [i.raw for i in batch], time.sleep
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
        The broker's Receive Maximum bounds what waits unacknowledged in memory.
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
                    self._ack(stored)
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
                        writer.submit(batch)
                        continue
                elif stopping and not writer.outstanding:
                    break
                if writer.outstanding:
                    wait = min(wait, 0.05) if wait > 0 else 0.05  # woken when a batch is stored
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
        client = self._client
        if client is not None:
            client.disconnect()
            # Write out the last acks and the DISCONNECT (bounded: the broker may be gone).
            for _ in range(20):
                if not client.want_write() or client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    break
        self.pipeline.sink.close()

    def stop(self) -> None:
        """Ask run() to drain, flush and return (from a signal handler or another thread)."""
        self._stop.set()
