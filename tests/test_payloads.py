"""Parsing of the v1 topics and payloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from fangxin.contract.payloads import (
    Limits,
    PayloadError,
    ResultPayload,
    StatusPayload,
    parse_elements,
)
from fangxin.contract.topics import InvalidTopic, parse_topic, shared_subscription
from tests.helpers import result, status

NOW = dt.datetime.now(dt.UTC)


def parse(channel: str, body: object, limits: Limits | None = None) -> list[object]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    # received now, not at import: the helpers stamp results with the time they are built
    now = dt.datetime.now(dt.UTC)
    return list(parse_elements(channel, raw, now, limits or Limits()))  # type: ignore[arg-type]


def test_topic_parts() -> None:
    topic = parse_topic("fangxin/v1/m-001/rt-1/result")
    assert (topic.site_id, topic.device_id, topic.channel) == ("m-001", "rt-1", "result")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("fangxin/v2/m/d/result", "is not fangxin/v1"),
        ("fangxin/v1/m/d/result/extra", "is not fangxin/v1"),
        ("fangxin/v1/m/d/video", "unknown channel"),
        ("fangxin/v1/m/d d/result", "not a valid id"),
    ],
)
def test_bad_topics(topic: str, reason: str) -> None:
    with pytest.raises(InvalidTopic, match=reason):
        parse_topic(topic)


def test_shared_subscription() -> None:
    assert shared_subscription("g1") == "$share/g1/fangxin/v1/+/+/+"
    assert shared_subscription(None) == "fangxin/v1/+/+/+"


def test_result_object_and_array() -> None:
    one = parse("result", result("r-1"))
    assert isinstance(one[0], ResultPayload)
    assert one[0].sample.name == "菠菜"
    many = parse("result", [result("r-1"), result("r-2")])
    assert [r.id for r in many] == ["r-1", "r-2"]  # type: ignore[attr-defined]


def test_array_keeps_good_elements() -> None:
    out = parse("result", [result("r-1"), {"id": "r-2"}, "x"])
    assert isinstance(out[0], ResultPayload)
    assert isinstance(out[1], PayloadError)
    assert "[1]" in str(out[1])
    assert "ts: Field required" in str(out[1])
    assert "expected a JSON object" in str(out[2])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (result("r", value="37.5"), "value: Input should be a valid number"),
        (result("r", ts="2026-11-29T07:58:10"), "ts: Input should have timezone info"),
        (result("r", ts=1764374290), "ts: Value error, must be an RFC 3339 string"),
        (result("r", ts=(NOW + dt.timedelta(hours=2)).isoformat()), "is in the future"),
        ({**result("r"), "sample": None}, "sample: Input should be a valid dictionary"),
        ({k: v for k, v in result("r").items() if k != "id"}, "id: Field required"),
        (result("r" * 65), "id: String should have at most 64 characters"),
    ],
)
def test_bad_results(body: dict[str, object], reason: str) -> None:
    out = parse("result", body)
    assert isinstance(out[0], PayloadError)
    assert reason in str(out[0])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "empty array"),
        (b"x" * 300, "exceeds the 200 limit"),
    ],
)
def test_message_level_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse("result", raw, Limits(max_bytes=200))


def test_too_many_elements() -> None:
    with pytest.raises(PayloadError, match="3 elements exceeds the 2 limit"):
        parse("result", [result("a"), result("b"), result("c")], Limits(max_items=2))


def test_status_keeps_numeric_extras() -> None:
    (parsed,) = parse("status", status(cpu_load=0.5, note="text"))
    assert isinstance(parsed, StatusPayload)
    fields = parsed.numeric_fields()
    assert fields["fps"] == 25.0
    assert isinstance(fields["fps"], float)
    assert fields["cpu_load"] == 0.5
    assert "note" not in fields


@pytest.mark.parametrize(("raw", "state"), [(b"online", "online"), (b'"offline"', "offline")])
def test_state(raw: bytes, state: str) -> None:
    assert parse("state", raw) == [state]


def test_bad_state() -> None:
    with pytest.raises(PayloadError, match="state must be 'online' or 'offline'"):
        parse("state", b"sleeping")
