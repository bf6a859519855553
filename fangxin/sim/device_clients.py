"""MQTT side of simulated devices: one paho client per device, LWT state offline."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fangxin.contract.topics import topic_for
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.sim.camera_sim import CameraFleet
from fangxin.sim.simulator import Simulator

_LOGGER = logging.getLogger(__name__)


def device_client(
    broker: BrokerAddress, site_id: str, device_id: str, password: str | None = None
) -> mqtt.Client:
    """Connect a device: retained LWT `offline`, then a retained `online` on every connect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{device_id}")
    user = device_id if password else broker.username
    if user:
        client.username_pw_set(user, password or broker.password)
    state_topic = topic_for(site_id, device_id, "state")
    client.will_set(state_topic, "offline", qos=1, retain=True)

    def on_connect(c: mqtt.Client, *_args: object) -> None:
        c.publish(state_topic, "online", qos=1, retain=True)

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    return client


def run_fleet(
    broker: BrokerAddress,
    simulator: Simulator,
    stop: threading.Event,
    duration_s: float | None = None,
    tick_s: float = 0.5,
    passwords: dict[str, str] | None = None,
) -> int:
    """Publish the simulator's messages until stopped; return how many were sent."""
    passwords = passwords or {}
    clients = {
        d.device_id: device_client(broker, d.site_id, d.device_id, passwords.get(d.device_id))
        for d in simulator.devices
    }
    sent = 0
    start = time.monotonic()
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if duration_s is not None and elapsed >= duration_s:
                break
            for pub in simulator.due(elapsed, dt.datetime.now(dt.UTC).astimezone()):
                clients[pub.device_id].publish(
                    topic_for(pub.site_id, pub.device_id, pub.channel),
                    pub.payload,
                    qos=pub.qos,
                    retain=pub.retain,
                )
                sent += 1
            stop.wait(tick_s)
    finally:
        for device in simulator.devices:
            say_offline(clients[device.device_id], device.site_id, device.device_id)
    return sent


def drop_uncleanly(client: mqtt.Client) -> None:
    """Close the connection without DISCONNECT, as a power cut would: the broker sends the will."""
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()


def say_offline(client: mqtt.Client, site_id: str, device_id: str) -> None:
    """Disconnect cleanly: a clean shutdown sends no will, so publish `offline` ourselves."""
    state = topic_for(site_id, device_id, "state")
    client.publish(state, "offline", qos=1, retain=True).wait_for_publish(2)
    client.disconnect()
    client.loop_stop()


def run_cameras(
    broker: BrokerAddress,
    fleet: CameraFleet,
    stop: threading.Event,
    duration_s: float | None = None,
    tick_s: float = 0.5,
    passwords: dict[str, str] | None = None,
) -> int:
    """Play a flaky camera fleet against the broker until stopped; return messages published."""
    passwords = passwords or {}
    clients: dict[str, tuple[str, mqtt.Client]] = {}
    sent = 0
    start = time.monotonic()
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if duration_s is not None and elapsed >= duration_s:
                break
            for action in fleet.due(elapsed, dt.datetime.now(dt.UTC).astimezone()):
                did = action.device_id
                if action.kind == "connect":
                    client = device_client(broker, action.site_id, did, passwords.get(did))
                    clients[did] = (action.site_id, client)
                elif action.kind == "publish" and did in clients and action.publication:
                    pub = action.publication
                    clients[did][1].publish(
                        topic_for(pub.site_id, did, pub.channel), pub.payload, qos=pub.qos
                    )
                    sent += 1
                elif action.kind == "disconnect_clean" and did in clients:
                    say_offline(clients.pop(did)[1], action.site_id, did)
                elif action.kind == "disconnect_unclean" and did in clients:
                    _LOGGER.debug("Camera %s drops its connection", did)
                    drop_uncleanly(clients.pop(did)[1])
            stop.wait(tick_s)
    finally:
        for did, (site_id, client) in clients.items():
            say_offline(client, site_id, did)
    return sent
