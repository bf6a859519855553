"""The ingester's store loop under database faults: retry on outages, isolate poison messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.batch import Batch, BatchStats, RawMessage
from fangxin.ingest.consumer import Ingester, _Inbound
from fangxin.ingest.models import DeadLetter
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count, dumps, register, result


class FaultyPipeline(Pipeline):
    """The real pipeline, with faults injected before chosen calls (the database is real)."""

    def __init__(self, faults: list[Exception | None]) -> None:
        super().__init__(SqlSink())
        self.faults = faults
        self.calls = 0

    def process(
        self,
        session: Session,
        messages: Sequence[RawMessage],
        source: str = "mqtt",
        prepared: Batch | None = None,
    ) -> BatchStats:
        self.calls += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            raise fault
        if any(b"poison" in m.payload for m in messages):
            raise ValueError("the database refused a value")
        return super().process(session, messages, source, prepared)


def inbound(site: str, device: str, body: Any, mid: int) -> _Inbound:
    raw = RawMessage(f"fangxin/v1/{site}/{device}/result", dumps(body), dt.datetime.now(dt.UTC))
    return _Inbound(raw, mid, 1, 0)


def test_outage_during_one_by_one_storing_is_retried(sessions: sessionmaker[Session]) -> None:
    register(sessions, "m-f", {"rt-f": "rapid_test"})
    outage = sa_exc.OperationalError("INSERT", {}, Exception("server closed the connection"))
    # batch fails on a poison message; storing singly then meets a database outage
    pipeline = FaultyPipeline([None, None, outage])
    ingester = Ingester(
        BrokerAddress("127.0.0.1", 1), sessions, pipeline, client_id="t", batch_size=10
    )
    batch = [
        inbound("m-f", "rt-f", result("r-1"), 1),
        inbound("m-f", "rt-f", {"poison": True, **result("r-2")}, 2),
        inbound("m-f", "rt-f", result("r-3"), 3),
    ]
    ingester._store(ingester._prepare(batch))  # prepared ahead, as the network thread does
    assert count(sessions, RapidTestResult) == 2
    with sessions() as session:
        reasons = session.scalars(select(DeadLetter.reason)).all()
    assert reasons == ["storage refused the message: the database refused a value"]
    assert pipeline.calls >= 5
