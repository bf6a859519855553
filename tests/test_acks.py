"""Batched PUBACKs: one packet of acks settles every message it names, in the order given."""

from __future__ import annotations

import struct
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fangxin.ingest.acks import ack_in_order, puback_bytes
from fangxin.sim.broker import RunningBroker
from tests.conftest import unique

MARK = b"end"


def test_puback_bytes_are_pahos_packets_in_order() -> None:
    mids = [7, 1, 65535, 300]
    expected = b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in mids)
    assert puback_bytes(mids) == expected


def _publish(broker: RunningBroker, topic: str, payloads: list[str]) -> None:
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    for payload in payloads:
        publisher.publish(topic, payload, qos=1).wait_for_publish(30)
    publisher.disconnect()
    publisher.loop_stop()


def _round_trip(client: mqtt.Client, topic: str, subacks: list[int], deadline: float) -> None:
    _, mid = client.subscribe(topic, qos=1)
    while mid not in subacks and time.monotonic() < deadline:
        client.loop(0.05)
    assert mid in subacks, "no SUBACK"


def _drain(broker: RunningBroker, client_id: str, topic: str, ack: bool) -> list[int]:
    """Receive what the session holds (manual acks); ack it all in one packet when told to.

    Done when a marker published after the subscription arrives: the broker sends what the
    session held before it, so no fixed wait decides what "everything" is.
    """
    got: list[mqtt.MQTTMessage] = []
    marks: list[int] = []
    subacks: list[int] = []
    marked = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=False,
        manual_ack=True,
    )

    def on_message(c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload == MARK:
            marks.append(msg.mid)
            marked.set()
        else:
            got.append(msg)

    client.on_message = on_message
    client.on_subscribe = lambda _c, _u, mid, *_a: subacks.append(mid)
    client.connect(broker.host, broker.port)
    deadline = time.monotonic() + 60
    _round_trip(client, topic, subacks, deadline)
    _publish(broker, topic, [MARK.decode()])
    while not marked.is_set() and time.monotonic() < deadline:
        client.loop(0.05)
    assert marked.is_set(), "the marker did not arrive"
    # the marker is acked after the rest, in arrival order, so it never comes back
    ack_in_order(client, [m.mid for m in got if ack] + marks)
    # The broker reads a connection in order: once it answers a later SUBSCRIBE, it has taken
    # the acks (closing with its messages unread would reset the socket and could lose them).
    _round_trip(client, topic, subacks, deadline)
    client.disconnect()
    client.loop(0.1)
    return [int(m.payload) for m in got]


def test_acked_batch_is_not_redelivered(private_mosquitto: RunningBroker) -> None:
    client_id, topic = unique("acks"), f"{unique('t')}/x"
    _drain(private_mosquitto, client_id, topic, ack=False)  # the session, subscribed
    _publish(private_mosquitto, topic, [str(i) for i in range(50)])

    assert _drain(private_mosquitto, client_id, topic, ack=False) == list(range(50))
    # unacked, the broker redelivers all of them; acked in one packet, none comes back
    assert _drain(private_mosquitto, client_id, topic, ack=True) == list(range(50))
    assert _drain(private_mosquitto, client_id, topic, ack=False) == []
