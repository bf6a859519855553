"""The ingester's broker link: a persistent QoS 1 session (MQTT 5, else 3.1.1), kept up."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fangxin.contract.topics import shared_subscription
from fangxin.ingest.fastclient import FastClient
from fangxin.ingest.mqtt_url import BrokerAddress

_LOGGER = logging.getLogger(__name__)


class ConnectRefused(RuntimeError):
    """The broker refused our CONNECT for a reason retrying will not fix."""


class BrokerLink:
    """Connects, subscribes and runs the network loop; what arrives goes to _keep()."""

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        client_id: str,
        shared_group: str | None,
        max_inflight: int,
        session_expiry_s: int,
        protocol: str,
    ) -> None:
        """Prepare the link; nothing connects until start()."""
        self.broker = broker
        self.client_id = client_id
        self.subscription = shared_subscription(shared_group)
        self.max_inflight = max_inflight
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = 30
        self.protocols = {
            "auto": (MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311),
            "5": (MQTTProtocolVersion.MQTTv5,),
            "3.1.1": (MQTTProtocolVersion.MQTTv311,),
        }[protocol]
        self.protocol: MQTTProtocolVersion | None = None
        self._reconnect_delay = 1.0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connack: ReasonCode | None = None
        self._generation = 0  # counts connections: a packet id is only good for its own
        self._client: FastClient | None = None

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
        kwargs: dict[str, Any] = {"keepalive": self.keepalive_s}
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
        """Take one received message (inside loop(), on the network thread)."""
        raise NotImplementedError

    def _wanted(self) -> int:
        """Return how many more messages to read before the next batch is due."""
        return 0

    def _pump(self, timeout_s: float) -> None:
        """Run paho's network loop once (read, write, keepalive); reconnect if the link is down."""
        client = self._client
        if client is None:
            self._stop.wait(timeout_s)
            return
        if client.loop(timeout_s) == mqtt.MQTT_ERR_SUCCESS:
            # loop() reads one packet per select(); read on while the socket holds whole ones.
            while (wanted := self._wanted()) > 0:
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._wanted() == wanted:
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

    def _disconnect(self) -> None:
        client = self._client
        if client is not None:
            client.disconnect()
            # Write out the last acks and the DISCONNECT (bounded: the broker may be gone).
            for _ in range(20):
                if not client.want_write() or client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    break

    def stop(self) -> None:
        """Ask run() to drain, flush and return (from a signal handler or another thread)."""
        self._stop.set()
