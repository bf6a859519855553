"""A batch's PUBACKs written as one packet: paho's ack() costs two syscalls per message."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import paho.mqtt.client as mqtt

PUBACK = 0x40
# PUBACK with remaining length 2: the packet id alone (MQTT 3.1.1; MQTT 5 reason "Success").
_PACK = struct.Struct("!BBH").pack


def puback_bytes(mids: Sequence[int]) -> bytes:
    """Return the PUBACK packets of mids, in the given order, as one byte string."""
    return b"".join([_PACK(PUBACK, 2, mid) for mid in mids])


def ack_in_order(client: mqtt.Client, mids: Sequence[int]) -> None:
    """Acknowledge QoS 1 messages in the given (arrival) order through paho's outgoing queue.

    paho's ack() wakes its socket pair and sends each PUBACK on its own: two send() calls per
    message, a tenth of a drain's time in profiles. Queued as one packet, the acks go out in
    one send() and stay ordered with whatever else paho writes (keepalives, DISCONNECT).
    """
    queue = getattr(client, "_packet_queue", None)
    if queue is None or len(mids) < 2:  # a paho without the queue we rely on: one by one
        for mid in mids:
            client.ack(mid, 1)
        return
    queue(PUBACK, puback_bytes(mids), 0, 0)


def ack_batch(client: mqtt.Client, acks: Sequence[tuple[int, int]]) -> None:
    """Acknowledge (mid, qos) pairs in arrival order (MQTT §4.6): QoS 1 alone as one packet."""
    if all(qos == 1 for _, qos in acks):
        ack_in_order(client, [mid for mid, _ in acks])
        return
    for mid, qos in acks:  # QoS 2 (the subscription asks for 1): paho's PUBCOMP, in order
        client.ack(mid, qos)
