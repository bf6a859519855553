"""The fleet report: SQL sums agree with the per-device arithmetic; coverage, online rate and
targets per district and category in JSON, CSV and XLSX; district scope; worst; offline now."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.fleet import Filters, fleet_figures
from fangxin.devices.models import Device, Site
from fangxin.devices.report import device_uptime
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.service.auth import create_key
from tests.conftest import MovableClock
from tests.devices_helpers import HOUR, at, feed_at, kitchen, observed, outages, seed_targets

DAY = 24 * HOUR


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("business", [False, True])
def test_sql_report_agrees_with_per_device_arithmetic(
    sessions: sessionmaker[Session], business: bool
) -> None:
    rng = random.Random(5)
    hours = {"k-1": (None, None), "k-2": ("22:00", "02:00"), "k-3": ("10:30", "14:00")}
    for site_id, (opens, closes) in hours.items():
        cams = [f"{site_id}-cam-{n}" for n in range(4)]
        kitchen(sessions, site_id, cams, opens=opens, closes=closes)
    # two stretches nobody observed, one of them across midnight
    observed(sessions, (-HOUR, 5 * HOUR), (6 * HOUR, 23 * HOUR), (25 * HOUR, 3 * DAY))
    for site_id in hours:
        for n in range(4):
            t, spans = 0.0, []
            while t < 2 * DAY:
                down = t + rng.uniform(600, 4 * HOUR)
                up = down + rng.uniform(30, 3 * HOUR)
                spans.append((down, up if up < 2 * DAY else None))
                t = up
            outages(sessions, f"{site_id}-cam-{n}", *spans)
    start, end, now = at(0.5 * HOUR), at(1.8 * DAY), at(1.9 * DAY)
    with sessions() as session:
        fleet = fleet_figures(session, start, end, now, tz="Asia/Shanghai", business_hours=business)
        assert len(fleet.devices) == 12
        for figures in fleet.devices:
            device = session.get(Device, figures.device_id)
            assert device is not None
            site = session.get(Site, device.site_id)
            assert site is not None
            single = device_uptime(
                session, device, site, start, end, now, tz="Asia/Shanghai", business_hours=business
            )
            assert figures.figures.online_s == pytest.approx(single["online_s"], abs=1e-3)
            assert figures.figures.offline_s == pytest.approx(single["offline_s"], abs=1e-3)
            assert figures.figures.unknown_s == pytest.approx(single["unknown_s"], abs=1e-3)
            assert figures.figures.offline_s > 0
        assert sum(d.figures.unknown_s for d in fleet.devices) > 0


def city(sessions: sessionmaker[Session], clock: MovableClock) -> dt.datetime:
    """Two districts: licensed kitchens with and without a camera online, a market; its now.

    The app's clock stops at that now: "online now" and "offline for" are exact, not clock-bound.
    """
    seed_targets(sessions)
    now = utcnow()
    clock.set(now)
    created = now - dt.timedelta(hours=2)
    kitchen(sessions, "k-a1", ["cam-a1"], district="新华区", category="学校食堂", created=created)
    kitchen(sessions, "k-a2", ["cam-a2"], district="新华区", category="学校食堂", created=created)
    kitchen(
        sessions,
        "k-a3",
        ["cam-a3"],
        district="新华区",
        category="中小餐饮",
        licence=None,
        created=created,
    )
    kitchen(sessions, "k-b1", ["cam-b1"], district="湛河区", category="中央厨房", created=created)
    kitchen(sessions, "k-b2", [], district="湛河区", category="大型餐饮", created=created)
    with sessions.begin() as session:
        registry.add_site(session, SiteIn(id="m-1", kind="market", district="湛河区", name="市场"))
        registry.add_device(session, DeviceIn(id="rt-1", site="m-1", kind="rapid_test"), created)
        from fangxin.devices.models import IngesterRun

        session.add(IngesterRun(client_id="t", started_at=created, last_alive_at=now))
    for site, device in (
        ("k-a1", "cam-a1"),
        ("k-a3", "cam-a3"),
        ("k-b1", "cam-b1"),
        ("m-1", "rt-1"),
    ):
        for back in (120, 60, 1):
            feed_at(sessions, site, device, now - dt.timedelta(seconds=back))
    return now


def window(now: dt.datetime) -> dict[str, str]:
    """Return a query window of 3 h ending at the seeding's now: figures exact, not clock-bound."""
    return {"from": (now - dt.timedelta(hours=3)).isoformat(), "to": now.isoformat()}


def rows_by(report: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    return {(r["district"], r["category"]): r for r in report}


def test_report_coverage_and_online_rate_against_targets(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    now = city(sessions, clock)
    body = client.get(
        "/api/v1/uptime", query_string=window(now), headers=auth(admin_key)
    ).get_json()
    summary = rows_by(body["summary"])
    total = summary[("全部", "全部")]
    assert (total["sites"], total["licensed_sites"], total["covered_sites"]) == (6, 4, 2)
    assert total["coverage"] == 0.5
    assert (total["devices"], total["online_now"], total["online_rate_now"]) == (5, 4, 0.8)
    assert (total["online_rate_target"], total["online_rate_met"]) == (0.9, False)
    assert summary[("新华区", "全部")]["online_rate_now"] == pytest.approx(2 / 3, abs=1e-6)
    assert summary[("新华区", "学校食堂")]["coverage"] == 0.5
    assert summary[("湛河区", "中央厨房")]["coverage"] == 1.0
    assert summary[("全部", "market")]["online_rate_now"] == 1.0
    coverage = {(c["target"], c["district"]): c for c in body["coverage"]}
    assert coverage[("mclz", "全部")]["coverage"] == 0.5
    assert coverage[("mclz", "全部")]["goal"] == 0.9
    assert coverage[("mclz", "全部")]["due"] == "2024-12-31"
    assert coverage[("mclz", "全部")]["met"] is False
    internet = coverage[("internet_mclz", "湛河区")]
    assert (internet["licensed_sites"], internet["covered_sites"], internet["met"]) == (2, 1, False)
    assert ("internet_mclz", "新华区") not in coverage  # no such kitchens there
    # figures of a device: registered 2 h ago, online for the last 120 s
    cam = next(s for s in body["sites"] if s["site"] == "k-a1")
    assert (cam["online_s"], cam["offline_s"]) == (120, 7080)


def _csv(response: object) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_report_as_csv_and_xlsx(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    now = city(sessions, clock)
    response = client.get(
        "/api/v1/uptime", query_string={"format": "csv", **window(now)}, headers=auth(admin_key)
    )
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = {r["单位编号"]: r for r in _csv(response)}
    assert set(rows) == {"k-a1", "k-a2", "k-a3", "k-b1", "k-b2", "m-1"}
    assert rows["k-a1"]["类别"] == "学校食堂"
    assert rows["m-1"]["类别"] == "农贸市场"
    assert (rows["k-a1"]["县（市、区）"], rows["k-a1"]["设备数"], rows["k-a1"]["当前在线数"]) == (
        "新华区",
        "1",
        "1",
    )
    assert float(rows["k-a1"]["在线秒数"]) == 120
    devices = {
        r["设备编号"]: r
        for r in _csv(client.get("/api/v1/uptime?format=csv&by=device", headers=auth(admin_key)))
    }
    assert set(devices) == {"cam-a1", "cam-a2", "cam-a3", "cam-b1", "rt-1"}
    assert (devices["cam-a2"]["设备类型"], devices["cam-a2"]["当前在线"]) == ("摄像头", "否")
    assert (devices["rt-1"]["设备类型"], devices["rt-1"]["类别"]) == ("快检仪", "农贸市场")
    # the v1 form: ?table= gives one table with field keys as headers
    legacy = {
        (r["district"], r["category"]): r
        for r in _csv(
            client.get("/api/v1/uptime?format=csv&table=summary", headers=auth(admin_key))
        )
    }
    assert legacy[("全部", "全部")]["coverage"] == "0.5"
    assert legacy[("全部", "全部")]["online_rate_met"] == "False"
    cov_rows = _csv(client.get("/api/v1/uptime?format=csv&table=coverage", headers=auth(admin_key)))
    assert {(r["target"], r["district"], r["coverage"]) for r in cov_rows} >= {
        ("mclz", "全部", "0.5"),
        ("internet_mclz", "全部", "0.5"),
    }
    xlsx = client.get("/api/v1/uptime?format=xlsx", headers=auth(admin_key))
    assert (xlsx.mimetype or "").endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(xlsx.data))
    assert book.sheetnames == ["单位", "汇总", "覆盖率", "说明"]
    sites_sheet = [[c.value for c in row] for row in book["单位"].iter_rows()]
    header = sites_sheet[0]
    assert header[:4] == ["单位编号", "单位名称", "县（市、区）", "类别"]
    by_site = {r[0]: dict(zip(header, r, strict=True)) for r in sites_sheet[1:]}
    assert by_site["m-1"]["类别"] == "农贸市场"
    assert by_site["k-b1"]["当前在线数"] == 1
    sheet = book["汇总"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["县（市、区）", "类别", "单位数"]
    first = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert (first["县（市、区）"], first["类别"], first["覆盖率"], first["当前在线率"]) == (
        "全部",
        "全部",
        0.5,
        0.8,
    )
    assert "农贸市场" in {r[1] for r in book["汇总"].iter_rows(values_only=True)}
    coverage_sheet = [[c.value for c in row] for row in book["覆盖率"].iter_rows(min_row=2)]
    assert any(
        r[0] == "mclz" and r[2] == "全部" and r[5] == 0.5 and r[6] == 0.9 for r in coverage_sheet
    )
    by_device = load_workbook(
        io.BytesIO(client.get("/api/v1/uptime?format=xlsx&by=device", headers=auth(admin_key)).data)
    )
    assert by_device.sheetnames[0] == "设备"
    device_ids = {r[0] for r in by_device["设备"].iter_rows(min_row=2, values_only=True)}
    assert device_ids == {"cam-a1", "cam-a2", "cam-a3", "cam-b1", "rt-1"}
    about = {str(r[0]): r[1] for r in book["说明"].iter_rows(values_only=True)}
    assert about["时区"] == "Asia/Shanghai"
    assert "T" not in str(about["开始"])  # local time to the second, not ISO


def test_district_scoped_key(
    client: FlaskClient, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    city(sessions, clock)
    with sessions() as session:
        key = create_key(session, "regulator", district="新华区")
        session.commit()
    body = client.get("/api/v1/uptime", headers=auth(key)).get_json()
    assert {r["district"] for r in body["summary"]} == {"全部", "新华区"}
    assert {s["site"] for s in body["sites"]} == {"k-a1", "k-a2", "k-a3"}
    other = client.get("/api/v1/uptime?district=湛河区", headers=auth(key))
    assert other.status_code == 403
    assert other.mimetype == "application/problem+json"
    assert client.get("/api/v1/devices/cam-b1/uptime", headers=auth(key)).status_code == 404
    assert client.get("/api/v1/devices/cam-a1/uptime", headers=auth(key)).status_code == 200
    offline = client.get("/api/v1/devices/offline", headers=auth(key)).get_json()
    assert [d["device"] for d in offline] == ["cam-a2"]


def test_worst_and_offline_now(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    seeded = city(sessions, clock)
    worst = client.get("/api/v1/uptime/worst?n=2", headers=auth(admin_key)).get_json()
    assert [d["device"] for d in worst["devices"]] == ["cam-a2", "cam-a1"]
    assert worst["devices"][0]["uptime"] == 0
    assert [s["site"] for s in worst["sites"]][0] == "k-a2"
    offline = client.get("/api/v1/devices/offline", headers=auth(admin_key)).get_json()
    assert [d["device"] for d in offline] == ["cam-a2"]
    assert offline[0]["offline_s"] == 7200  # since its registration 2 h before the seeding
    clock.set(seeded + dt.timedelta(seconds=90))
    offline = client.get("/api/v1/devices/offline", headers=auth(admin_key)).get_json()
    assert offline[0]["offline_s"] == 7290


def test_device_uptime_endpoint_and_bad_windows(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    now = city(sessions, clock)
    body = client.get(
        "/api/v1/devices/cam-a1/uptime", query_string=window(now), headers=auth(admin_key)
    ).get_json()
    assert body["offline_periods"][0]["cause"] == "registered"
    assert body["online_now"] is True
    # the window starts at the registration, 2 h ago, when the ingester run began
    assert body["unknown_s"] == 0
    assert (body["online_s"], body["offline_s"]) == (120, 7080)
    bad = client.get("/api/v1/uptime?from=yesterday", headers=auth(admin_key))
    assert bad.status_code == 400
    assert bad.mimetype == "application/problem+json"
    reversed_ = client.get("/api/v1/uptime?from=2026-11-02&to=2026-11-01", headers=auth(admin_key))
    assert reversed_.status_code == 400
    assert client.get("/api/v1/uptime?format=pdf", headers=auth(admin_key)).status_code == 422
    assert client.get("/api/v1/devices/nope/uptime", headers=auth(admin_key)).status_code == 404


def test_targets_are_configurable(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    city(sessions, clock)
    response = client.put(
        "/api/v1/uptime/targets/mclz",
        json={"target": 0.5, "due": "2026-12-31"},
        headers=auth(admin_key),
    )
    assert response.status_code == 200
    body = client.get("/api/v1/uptime", headers=auth(admin_key)).get_json()
    mclz = next(c for c in body["coverage"] if c["target"] == "mclz" and c["district"] == "全部")
    assert (mclz["goal"], mclz["met"], mclz["due"]) == (0.5, True, "2026-12-31")
    with sessions() as session:
        regulator = create_key(session, "regulator")
        session.commit()
    denied = client.put(
        "/api/v1/uptime/targets/mclz", json={"target": 0.1}, headers=auth(regulator)
    )
    assert denied.status_code == 403


def test_filters_by_category(sessions: sessionmaker[Session], clock: MovableClock) -> None:
    city(sessions, clock)
    with sessions() as session:
        fleet = fleet_figures(
            session, utcnow() - dt.timedelta(hours=1), utcnow(), utcnow(),
            tz="Asia/Shanghai", business_hours=False, filters=Filters(category="学校食堂"),
        )  # fmt: skip
    assert {d.device_id for d in fleet.devices} == {"cam-a1", "cam-a2"}


def test_uptime_report_command(
    sessions: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: MovableClock,
) -> None:
    city(sessions, clock)
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    runner = CliRunner()
    out = runner.invoke(main, ["uptime", "report", "--format", "csv", "--district", "新华区"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {(r["单位编号"], r["类别"]) for r in rows} == {
        ("k-a1", "学校食堂"),
        ("k-a2", "学校食堂"),
        ("k-a3", "中小餐饮"),
    }
    path = tmp_path / "uptime.xlsx"
    out = runner.invoke(
        main, ["uptime", "report", "--format", "xlsx", "--by", "device", "--out", str(path)]
    )
    assert out.exit_code == 0, out.output
    assert load_workbook(path)["汇总"]["A2"].value == "全部"
    assert load_workbook(path)["设备"]["A1"].value == "设备编号"
    bad = runner.invoke(main, ["uptime", "report", "--from", "soon"])
    assert bad.exit_code != 0


def test_outage_table_classifies_as_the_figures_do(sessions: sessionmaker[Session]) -> None:
    # the ingester was down 10:00-10:40 inside the camera's 09:50-11:00 outage
    kitchen(sessions, "k-1", ["cam-1"])
    observed(sessions, (-HOUR, 10 * HOUR), (10 * HOUR + 2400, 12 * HOUR))
    outages(sessions, "cam-1", (9 * HOUR + 3000, 11 * HOUR))
    with sessions() as session:
        device, site = session.get(Device, "cam-1"), session.get(Site, "k-1")
        assert device is not None
        assert site is not None
        body = device_uptime(
            session, device, site, at(9 * HOUR), at(12 * HOUR), at(12 * HOUR),
            tz="Asia/Shanghai", business_hours=False,
        )  # fmt: skip
    offline = body["offline_periods"]
    assert [(p["from"], p["to"]) for p in offline] == [
        (at(9 * HOUR + 3000).isoformat(), at(10 * HOUR).isoformat()),
        (at(10 * HOUR + 2400).isoformat(), at(11 * HOUR).isoformat()),
    ]
    assert sum(p["seconds"] for p in offline) == pytest.approx(body["offline_s"])
    assert body["unknown_s"] == pytest.approx(2400)
