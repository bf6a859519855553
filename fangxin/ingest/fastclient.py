"""A paho client with a lean receive path for the ingester's QoS 1 PUBLISH stream.

paho reads each packet with three or four recv() calls (the command byte, the length bytes one
at a time, the body) and decodes every MQTT 5 PUBLISH into Properties and an MQTTMessage
before matching callbacks: in profiles of a drain, half of the ingester's time. Here the socket
is read in large chunks and a plain QoS 1 PUBLISH (no properties, a UTF-8 topic) goes straight
to one callback; anything else takes paho's own path, unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

# (topic, payload, retained, packet id) of a QoS 1 message
OnQos1 = Callable[[str, bytes, bool, int], None]
PINGREQ, PINGREQ_PACKET = 0xC0, b"\xc0\x00"
_CHUNK = 65536


class BufferedSocket:
    """A socket read a chunk at a time; pending() tells paho's loop() what is already here."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: Any) -> None:
        """Wrap a connected socket (plain, TLS or paho's websocket wrapper)."""
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def recv(self, size: int) -> bytes:
        """Return up to size bytes: from the buffer, else from one large read of the socket."""
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            buf = bytes(self.sock.recv(_CHUNK))  # BlockingIOError when empty: "try later"
            if not buf:
                return buf  # connection closed
            pos = 0
        self.buf, self.pos = buf, pos + size
        return buf[pos : pos + size]

    def pending(self) -> int:
        """Return the bytes readable without waiting (paho skips select() while there are)."""
        inner = getattr(self.sock, "pending", None)
        return max(len(self.buf) - self.pos, 0) + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class FastClient(mqtt.Client):
    """paho's client; QoS 1 messages go to on_qos1 when it is set and acks are manual."""

    on_qos1: OnQos1 | None = None

    def _create_socket(self) -> Any:
        return BufferedSocket(super()._create_socket())

    def _handle_publish(self) -> MQTTErrorCode:
        deliver = self.on_qos1
        command = self._in_packet["command"]
        if deliver is None or command & 0x06 != 0x02 or not self._manual_ack or self._logs():
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = packet[2:end].decode()
            mid = (packet[end] << 8) | packet[end + 1]
            start = end + 2
            if self._protocol == MQTTProtocolVersion.MQTTv5:
                if packet[start] != 0:  # properties (a topic alias among them): paho's path
                    return super()._handle_publish()
                start += 1
        except (IndexError, UnicodeDecodeError):
            return super()._handle_publish()  # paho words the problem as it always has
        if not topic:
            return super()._handle_publish()
        deliver(topic, bytes(packet[start:]), bool(command & 0x01), mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _logs(self) -> bool:
        # paho logs every PUBLISH at DEBUG: whoever listens gets its path and its lines.
        logger = self._logger
        return self.on_log is not None or (
            logger is not None and logger.isEnabledFor(logging.DEBUG)
        )

    def ping_unread(self) -> None:
        """Send a PINGREQ at most every half keepalive; its answer waits unread.

        For a loop that leaves the socket unread (the ingester with memory full): the broker
        hears from us in time, and paho, not told of this ping, never counts its PINGRESP as
        missing. Its own keepalive would drop the link, and reading for the PINGRESP would read
        everything the broker queued in front of it. paho moves _last_msg_out only for its own
        pings, so this one moves it too: else every call would send one.
        """
        now = mqtt.time_func()
        if self._keepalive and now - self._last_msg_out >= self._keepalive / 2:
            self._packet_queue(PINGREQ, PINGREQ_PACKET, 0, 0)
            with self._msgtime_mutex:
                self._last_msg_out = now

    def wake(self) -> None:
        """Interrupt a loop() waiting in select(), from another thread (as paho's publish does)."""
        pair = self._sockpairW
        if pair is not None:
            # full (a wake-up is pending anyway) or closed by a reconnect: nothing to do
            with contextlib.suppress(OSError):
                pair.send(b"0")
