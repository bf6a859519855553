"""The provisioned Grafana dashboard asks InfluxDB only for series the ingester really writes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import Point
from fangxin.trace.results.models import TestItem
from tests.deploy_helpers import ROOT, load_compose, mounts
from tests.helpers import dumps, register, result, status

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fangxin.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "influxdb.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
# Columns Flux adds to every row, and Grafana's own variables.
SYSTEM_COLUMNS = {"_time", "_value", "_start", "_stop", "_measurement", "_field"}
BUILTIN_VARIABLES = {"__field", "__all", "__interval", "__range"}


class CapturingSink:
    """A PointSink keeping what the pipeline writes, as InfluxDB would receive it."""

    def __init__(self) -> None:
        self.points: list[Point] = []

    def write(self, session: Session, points: Sequence[Point]) -> None:
        self.points.extend(points)

    def problem(self) -> str | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def written(sessions: sessionmaker[Session]) -> dict[str, set[str]]:
    """Run a result and a heartbeat through the real pipeline: measurement -> tag and field keys."""
    register(sessions, "m-g1", {"rt-g1": "rapid_test", "cam-g1": "camera"})
    sink = CapturingSink()
    now = dt.datetime.now(dt.UTC)
    messages = [
        RawMessage("fangxin/v1/m-g1/rt-g1/result", dumps(result("r-g1", 62.5)), now),
        RawMessage("fangxin/v1/m-g1/cam-g1/status", dumps(status()), now),
    ]
    with sessions.begin() as session:
        Pipeline(sink).process(session, messages)
    keys: dict[str, set[str]] = {}
    for point in sink.points:
        keys.setdefault(point.measurement, set()).update(point.tags, point.fields)
        keys.setdefault(f"{point.measurement}.tags", set()).update(point.tags)
    assert {"rapid_test", "device_status"} <= set(keys)
    return keys


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the panels that query (rows hold none)."""
    yield from (p for p in dashboard["panels"] if p["type"] != "row")


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Yield every Flux query: panel targets and template variables."""
    for panel in panels(dashboard):
        yield from (target["query"] for target in panel["targets"])
    yield from (v["query"] for v in dashboard["templating"]["list"])


def test_queries_use_only_what_the_ingester_writes(
    dashboard: dict[str, Any], written: dict[str, set[str]]
) -> None:
    seen = set()
    for query in queries(dashboard):
        measurements = set(re.findall(r'r\._measurement == "([^"]+)"', query))
        assert measurements, query
        assert measurements <= set(written), query
        known = set().union(*(written[m] for m in measurements))
        tags = set().union(*(written[f"{m}.tags"] for m in measurements))
        fields = set(re.findall(r'r\._field == "([^"]+)"', query))
        assert fields <= known - tags, query
        assert set(re.findall(r"\br\.([a-z]\w*)", query)) <= tags, query
        assert set(re.findall(r'\btag: "(\w+)"', query)) <= tags, query
        for listed in re.findall(r"columns: \[([^\]]*)\]", query):
            columns = set(re.findall(r'"(\w+)"', listed))
            assert columns <= known | SYSTEM_COLUMNS, query
        seen |= measurements | fields
    # every series the dashboard promises is there: rapid-test values and counts, status fields
    assert {"rapid_test", "value", "id", "device_status"} <= seen
    assert {"fps", "bitrate_kbps", "storage_free_gb", "temp_c"} <= seen


def test_variables_units_and_timezone(dashboard: dict[str, Any]) -> None:
    assert dashboard["timezone"] == "Asia/Shanghai"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"site", "device"} <= variables
    for query in queries(dashboard):
        used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}", query))
        assert used <= variables | BUILTIN_VARIABLES, query
        if "r._measurement" in query and "schema.tagValues" not in query:
            assert "${site:regex}" in query, query
            assert "${device:regex}" in query, query
    for panel in panels(dashboard):
        if panel["type"] in ("timeseries", "stat"):
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        if any("every: 1d" in target["query"] for target in panel["targets"]):
            # calendar days of the city, not of UTC
            for target in panel["targets"]:
                assert 'timezone.location(name: "Asia/Shanghai")' in target["query"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_thresholds_follow_the_code(
    dashboard: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        ache = session.scalars(select(TestItem).where(TestItem.code == "pesticide-ache")).one()
    by_field: dict[str, list[float]] = {}
    for panel in panels(dashboard):
        steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
        flux = "\n".join(target["query"] for target in panel["targets"])
        for field in re.findall(r'r\._field == "([^"]+)"', flux):
            by_field.setdefault(field, []).extend(s["value"] for s in steps if s["value"])
    assert by_field["value"] == [ache.suspect_from, ache.positive_threshold]
    assert by_field["storage_free_gb"] == [Settings().storage_low_gb]


def test_provisioned_by_compose(dashboard: dict[str, Any]) -> None:
    datasource = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"][0]
    assert (datasource["type"], datasource["jsonData"]["version"]) == ("influxdb", "Flux")
    expected = {"type": "influxdb", "uid": datasource["uid"]}
    for panel in panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        assert all(t["datasource"] == expected for t in panel["targets"]), panel["title"]
    assert all(v["datasource"] == expected for v in dashboard["templating"]["list"])
    # the datasource's ${VARS} are in Grafana's environment, pointing at the compose InfluxDB
    grafana = load_compose()["services"]["grafana"]
    env = grafana["environment"]
    used = re.findall(r"\$\{(\w+)\}", DATASOURCES.read_text(encoding="utf-8"))
    assert used
    assert all(env.get(name) for name in used)
    assert env["FANGXIN_INFLUX_URL"] == "http://influxdb:8086"
    # the provider reads the directory compose mounts the dashboard into
    targets = {m.source: m.target for m in mounts(grafana)}
    assert targets["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    path = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))["providers"][0]["options"]["path"]
    assert targets["./deploy/grafana/dashboards"] == path
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{path}/{DASHBOARD.name}"
