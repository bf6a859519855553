"""Batched PUBACKs: one packet of acks settles every message it names, in the order given."""

from __future__ import annotations

import struct
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fangxin.ingest.acks import ack_in_order, puback_bytes
from fangxin.sim.broker import RunningBroker
from tests.conftest import unique


def test_puback_bytes_are_pahos_packets_in_order() -> None:
    mids = [7, 1, 65535, 300]
    expected = b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in mids)
    assert puback_bytes(mids) == expected


def _drain(broker: RunningBroker, client_id: str, topic: str, ack: bool) -> list[int]:
    """Receive what the session holds (manual acks); ack it all in one packet when told to."""
    got: list[mqtt.MQTTMessage] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=False,
        manual_ack=True,
    )
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        client.loop(0.05)
    if ack:
        ack_in_order(client, [m.mid for m in got])
        while client.want_write():
            client.loop(0.05)
    client.disconnect()
    client.loop(0.1)
    return [int(m.payload) for m in got]


def test_acked_batch_is_not_redelivered(private_mosquitto: RunningBroker) -> None:
    client_id, topic = unique("acks"), f"{unique('t')}/x"
    _drain(private_mosquitto, client_id, topic, ack=False)  # the session, subscribed
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
    publisher.connect(private_mosquitto.host, private_mosquitto.port)
    publisher.loop_start()
    for i in range(50):
        publisher.publish(topic, str(i), qos=1).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()

    assert _drain(private_mosquitto, client_id, topic, ack=False) == list(range(50))
    # unacked, the broker redelivers all of them; acked in one packet, none comes back
    assert _drain(private_mosquitto, client_id, topic, ack=True) == list(range(50))
    assert _drain(private_mosquitto, client_id, topic, ack=False) == []
