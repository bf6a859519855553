"""The ingester's InfluxDB sink against a real line-protocol server: Debian's VictoriaMetrics."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.influx import InfluxSink
from fangxin.ingest.models import SeriesPoint
from fangxin.sim.broker import free_port
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import (
    CST,
    count,
    dumps,
    publish_all,
    publisher,
    register,
    result,
    running_ingester,
    status,
    wait_until,
)

BINARY = shutil.which("victoria-metrics")


def _get(url: str, data: dict[str, str] | None = None) -> str:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, body, timeout=5) as response:
        return str(response.read().decode())


def _healthy(url: str) -> bool:
    try:
        return _get(f"{url}/health").strip() == "OK"
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    """Start victoria-metrics on a free loopback port; stop it at the end."""
    if BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("victoria-metrics is missing in CI (.ci/run installs it)")
        pytest.skip("no victoria-metrics binary (apt-get install victoria-metrics)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "vm.log").open("wb")
    proc = subprocess.Popen(
        [BINARY, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'vm'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(lambda: _healthy(url) or proc.poll() is not None, 30)
        assert proc.poll() is None, (tmp_path / "vm.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _export(url: str, names: list[str]) -> list[dict[str, Any]]:
    """Return the exported series of these metric names, flushing first."""
    _get(f"{url}/internal/force_flush")
    match = '{__name__=~"' + "|".join(names) + '"}'
    text = _get(f"{url}/api/v1/export", {"match[]": match, "start": "0", "end": "4102444800"})
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_results_and_heartbeats_read_back_from_victoria_metrics(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str, victoria: str
) -> None:
    """VictoriaMetrics keeps milliseconds and numeric fields only, so that is what is compared."""
    site, rt, cam = unique("m"), unique("rt"), unique("cam")
    register(sessions, site, {rt: "rapid_test", cam: "camera"})
    settings = replace(
        settings, influx_url=victoria, influx_token="t", influx_org="o", influx_bucket="b"
    )
    base = dt.datetime.now(CST).replace(microsecond=0) - dt.timedelta(minutes=10)
    values = [62.0, 12.5, 45.25]
    stamps = [base + dt.timedelta(seconds=i, milliseconds=123 * (i + 1)) for i in range(3)]
    beats = [base + dt.timedelta(minutes=1 + i, milliseconds=7) for i in range(2)]
    messages = [
        (
            f"fangxin/v1/{site}/{rt}/result",
            dumps(result(f"r-{i}", values[i], ts=stamps[i].isoformat(timespec="milliseconds"))),
        )
        for i in range(3)
    ] + [
        (
            f"fangxin/v1/{site}/{cam}/status",
            dumps(status(ts=beats[i].isoformat(timespec="milliseconds"), fps=20 + i)),
        )
        for i in range(2)
    ]
    with running_ingester(settings, broker_url) as ingester, publisher(broker_url) as client:
        sink = ingester.pipeline.sink
        assert isinstance(sink, InfluxSink)
        publish_all(client, messages)
        assert wait_until(lambda: count(sessions, RapidTestResult) == 3)
        assert sink.wait_drained(30)
    assert count(sessions, SeriesPoint) == 0  # the points went to the line-protocol server

    def ms(when: dt.datetime) -> int:
        return int(when.timestamp() * 1000)

    names = ["rapid_test_value", "device_status_fps", "device_status_temp_c"]
    series: list[dict[str, Any]] = []

    def exported() -> bool:
        series[:] = _export(victoria, names)
        points = sum(len(s["timestamps"]) for s in series)
        return points == 3 + 2 + 2

    assert wait_until(exported, 30), series
    got = {
        (s["metric"]["__name__"], json.dumps(s["metric"], sort_keys=True)): sorted(
            zip(s["timestamps"], s["values"], strict=True)
        )
        for s in series
    }
    rt_tags = {"site": site, "device": rt, "item": "pesticide-ache"}
    cam_tags = {"site": site, "device": cam, "kind": "camera"}

    def key(name: str, tags: dict[str, str]) -> tuple[str, str]:
        return name, json.dumps({"__name__": name, **tags}, sort_keys=True)

    assert got == {
        key("rapid_test_value", {**rt_tags, "verdict": "positive"}): [(ms(stamps[0]), 62.0)],
        key("rapid_test_value", {**rt_tags, "verdict": "negative"}): [(ms(stamps[1]), 12.5)],
        key("rapid_test_value", {**rt_tags, "verdict": "suspect"}): [(ms(stamps[2]), 45.25)],
        key("device_status_fps", cam_tags): [(ms(beats[0]), 20.0), (ms(beats[1]), 21.0)],
        key("device_status_temp_c", cam_tags): [(ms(beats[0]), 41.0), (ms(beats[1]), 41.0)],
    }
