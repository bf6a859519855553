"""The MQTT topic contract v1: fangxin/v1/{site_id}/{device_id}/{channel}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fangxin.contract.ids import ID_RE

Channel = Literal["result", "status", "alarm", "state"]
CHANNELS: tuple[Channel, ...] = ("result", "status", "alarm", "state")
PREFIX = "fangxin/v1"
SUBSCRIPTION = f"{PREFIX}/+/+/+"


class InvalidTopic(ValueError):
    """A topic outside the v1 contract."""


@dataclass(frozen=True, slots=True)
class Topic:
    """The parts of a v1 topic."""

    site_id: str
    device_id: str
    channel: Channel


def shared_subscription(group: str | None) -> str:
    """Return the subscription filter, through $share/GROUP/ when a group is given."""
    return f"$share/{group}/{SUBSCRIPTION}" if group else SUBSCRIPTION


def topic_for(site_id: str, device_id: str, channel: Channel) -> str:
    """Build the topic a device publishes a channel on."""
    return f"{PREFIX}/{site_id}/{device_id}/{channel}"


def parse_topic(topic: str) -> Topic:
    """Split a v1 topic, or raise InvalidTopic saying what is wrong."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise InvalidTopic(f"topic {topic!r} is not fangxin/v1/{{site}}/{{device}}/{{channel}}")
    _, _, site_id, device_id, channel = parts
    if channel not in CHANNELS:
        raise InvalidTopic(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    for label, value in (("site", site_id), ("device", device_id)):
        if not ID_RE.match(value):
            raise InvalidTopic(f"{label} id {value!r} is not a valid id")
    return Topic(site_id, device_id, channel)
