"""Fuzzing the MQTT door: whatever arrives, parsing says why or accepts, and never crashes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.contract.payloads import Limits, PayloadError, parse_elements
from fangxin.contract.topics import CHANNELS, InvalidTopic, parse_topic
from fangxin.devices.models import Site
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.models import DeadLetter, SecurityEvent
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count, register, result, status

NOW = dt.datetime.now(dt.UTC)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid payloads with some fields replaced, removed or added."""
    return st.builds(
        lambda replace, drop: {k: v for k, v in {**base, **replace}.items() if k not in drop},
        st.dictionaries(st.sampled_from([*base, "extra"]), json_values, max_size=3),
        st.sets(st.sampled_from(list(base)), max_size=2),
    )


@settings(max_examples=400, deadline=None)
@given(channel=st.sampled_from(CHANNELS), payload=st.binary(max_size=300))
def test_arbitrary_bytes(channel: Any, payload: bytes) -> None:
    try:
        out = parse_elements(channel, payload, NOW, Limits(max_bytes=200))
    except PayloadError as exc:
        out = [exc]
    assert out
    assert all(str(e) for e in out if isinstance(e, PayloadError))  # a refusal says why


@settings(max_examples=400, deadline=None)
@given(
    channel=st.sampled_from(["result", "status", "alarm"]),
    body=json_values
    | mutated(result("r-1"))
    | mutated(status())
    | st.lists(mutated(result("r")), max_size=3),
)
def test_arbitrary_json(channel: Any, body: Any) -> None:
    raw = json.dumps(body).encode()
    try:
        out = parse_elements(channel, raw, NOW, Limits())
    except PayloadError as exc:
        out = [exc]
    assert out
    assert all(str(e) for e in out if isinstance(e, PayloadError))  # a refusal says why


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=80) | st.builds("/".join, st.lists(st.text(max_size=12), max_size=7)))
def test_arbitrary_topics(topic: str) -> None:
    try:
        channel: str = parse_topic(topic).channel
    except InvalidTopic as exc:
        channel = str(exc)
        assert channel  # a refusal says why
        return
    assert channel in CHANNELS


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(["result", "status", "alarm", "state", "video"]),
            st.sampled_from(["fz-rt", "fz-ghost"]),
            json_values.map(lambda v: json.dumps(v).encode())
            | mutated(result("r-1")).map(lambda v: json.dumps(v).encode())
            | st.binary(max_size=40),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_pipeline_never_raises(
    sessions: sessionmaker[Session], messages: list[tuple[str, str, bytes]]
) -> None:
    with sessions() as session:
        if session.get(Site, "fz-m") is None:
            register(sessions, "fz-m", {"fz-rt": "rapid_test"})
    raws = [
        RawMessage(f"fangxin/v1/fz-m/{device}/{channel}", body, NOW)
        for channel, device, body in messages
    ]
    before = {m: count(sessions, m) for m in (DeadLetter, SecurityEvent, RapidTestResult)}
    with sessions.begin() as session:
        stats = Pipeline(SqlSink()).process(session, raws)
    added = {m: count(sessions, m) - n for m, n in before.items()}
    # every refusal is stored with its reason, as many as the batch reports
    assert added[DeadLetter] == stats.dead_letters
    assert added[SecurityEvent] == stats.security_events
    # who may say what: an unknown device, or an instrument raising a camera alarm, is a
    # security event whatever the payload; an unknown channel is a dead letter before that
    ghosts = sum(d == "fz-ghost" and c != "video" for c, d, _ in messages)
    wrong_channel = sum(d == "fz-rt" and c == "alarm" for c, d, _ in messages)
    assert stats.security_events == ghosts + wrong_channel
    assert stats.dead_letters >= sum(c == "video" for c, _, _ in messages)
    # stored results are the instrument's only, never more than the batch accepted
    assert 0 <= added[RapidTestResult] <= stats.results
    with sessions() as session:
        reasons = session.scalars(select(DeadLetter.reason)).all()
        devices = set(session.scalars(select(RapidTestResult.device_id)))
    assert all(reasons)
    assert devices <= {"fz-rt"}
