"""The ingester's paho client: chunked reads, and plain QoS 1 PUBLISHes past paho's decoding."""

from __future__ import annotations

import socket
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fangxin.ingest.fastclient import BufferedSocket, FastClient
from fangxin.sim.broker import RunningBroker
from tests.conftest import unique


def test_buffered_socket_hands_out_a_chunk_in_pieces() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        buffered = BufferedSocket(right)
        left.sendall(b"abcdef")
        time.sleep(0.05)
        assert buffered.recv(1) == b"a"
        assert buffered.pending() == 5  # read ahead: loop() must not wait in select() for it
        assert buffered.recv(2) == b"bc"
        assert buffered.recv(10) == b"def"
        assert buffered.pending() == 0
        with pytest.raises(BlockingIOError):
            buffered.recv(1)
        left.sendall(b"g")
        time.sleep(0.05)
        assert buffered.recv(4) == b"g"
        left.close()
        time.sleep(0.05)
        assert buffered.recv(1) == b""  # closed by the peer


Seen = tuple[str, str, bytes, bool, int]


def _receive(broker: RunningBroker, protocol: MQTTProtocolVersion) -> list[Seen]:
    """Publish a mix of messages to a FastClient; return how each arrived, in arrival order."""
    seen: list[Seen] = []
    topic = f"{unique('fast')}/x"
    client = FastClient(
        CallbackAPIVersion.VERSION2,
        client_id=unique("fast"),
        protocol=protocol,
        manual_ack=True,
    )
    client.on_qos1 = lambda t, p, r, mid: seen.append(("fast", t, p, r, 1))
    client.on_message = lambda _c, _u, m: seen.append(
        ("paho", m.topic, bytes(m.payload), m.retain, m.qos)
    )
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    deadline = time.monotonic() + 30
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=unique("pub"), protocol=MQTTProtocolVersion.MQTTv5
    )
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    client.loop(0.5)  # SUBACK
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = ("k", "v")
    sends = [
        (b"plain", 1, None),
        (b"with properties", 1, props),
        (b"at most once", 0, None),
        ("中文 payload".encode(), 1, None),
    ]
    for payload, qos, properties in sends:
        publisher.publish(topic, payload, qos=qos, properties=properties).wait_for_publish(10)
    while len(seen) < len(sends) and time.monotonic() < deadline:
        client.loop(0.05)
    publisher.disconnect()
    publisher.loop_stop()
    client.disconnect()
    assert all(t == topic for _, t, _, _, _ in seen)
    return seen


def test_plain_qos1_messages_skip_pahos_decoding_and_others_keep_it(
    private_mosquitto: RunningBroker,
) -> None:
    seen = _receive(private_mosquitto, MQTTProtocolVersion.MQTTv5)
    assert [(path, p, r, q) for path, _, p, r, q in seen] == [
        ("fast", b"plain", False, 1),
        ("paho", b"with properties", False, 1),  # properties: paho's path
        ("paho", b"at most once", False, 0),
        ("fast", "中文 payload".encode(), False, 1),
    ]


def test_mqtt311_messages_take_the_same_paths(private_mosquitto: RunningBroker) -> None:
    # MQTT 3.1.1 has no properties: the broker drops them, so that message is a plain one too
    assert [s[0] for s in _receive(private_mosquitto, MQTTProtocolVersion.MQTTv311)] == [
        "fast",
        "fast",
        "paho",
        "fast",
    ]
