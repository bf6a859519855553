"""The first hour: `fangxin demo` on other ports prints a login and URLs that work in Chromium.

The browser logs in with what the demo printed and visits every printed URL; a page fails on
any ASCII enum code or ISO timestamp in its visible text.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from fangxin.devices import labels
from fangxin.sim.broker import free_port, mosquitto_binary
from fangxin.trace.results.followup import STATES
from fangxin.trace.results.verdicts import VERDICT_LABELS
from tests.helpers import wait_until
from tests.test_browser_pages import ARGS, CHROMIUM

ENUMS = {
    *labels.DEVICE_KINDS,
    *labels.CAUSES,
    *labels.ALARM_STATUSES,
    *labels.ALARM_RESOLUTIONS,
    *labels.SITE_KINDS,
    *labels.CONNECTIVITY,
    *VERDICT_LABELS,
    *STATES,
    "mclz",
    "internet_mclz",
    "pesticide-ache",
}
ENUM_WORD = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, ENUMS)) + r")(?![\w-])")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\d{2}:\d{2}:\d{2}\.\d+|[+-]\d{2}:\d{2}\b")
LINE = re.compile(r"^\s+(dashboard|market|kitchen|certificate|label PDF)\s+(\S+)(.*)$", re.M)
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.skipif(mosquitto_binary() is None, reason="no mosquitto binary"),
]


def english_in(text: str) -> list[str]:
    """Return the enum codes and ISO timestamps a person would see in a page's text."""
    return ENUM_WORD.findall(text) + ISO.findall(text)


def test_english_detector_catches_codes_and_iso_times() -> None:
    assert english_in("类型 camera · 2026-11-29T07:58:10.123+00:00") != []
    assert english_in("状态 new") == ["new"]
    assert english_in("摄像头 · 2026-11-29 07:58:10 · cam-k-001-1 · rt-m-001") == []


def _printed(log: Path) -> dict[str, str] | None:
    found = {m[1]: m[2] for m in LINE.finditer(log.read_text(errors="replace"))}
    return found if len(found) == 5 else None


def test_demo_prints_a_login_and_urls_that_open(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    port, mqtt_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")}
    env["FANGXIN_DATA_DIR"] = str(tmp_path / "var")
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "fangxin.cli", "demo", "--port", str(port)]
            + ["--mqtt-port", str(mqtt_port), "--broker", "mosquitto"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        assert wait_until(lambda: _printed(log) is not None, 90), log.read_text()
        urls = _printed(log)
        assert urls is not None
        login = re.search(r"\(login: (\S+) / (\S+)\)", log.read_text())
        assert login, log.read_text()
        assert urls["certificate"].startswith(f"http://localhost:{port}/c/")
        for url in urls.values():
            assert f":{port}/" in url
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(locale="zh-CN")
            page.goto(urls["dashboard"])
            page.fill("input[name=username]", login[1])
            page.fill("input[name=password]", login[2])
            page.click("button[type=submit]")
            page.wait_for_url(urls["dashboard"])
            seen: dict[str, str] = {}
            beats: list[str] = []
            extra = [urls["dashboard"] + "kpi", urls["dashboard"] + "devices/cam-k-001-1?days=30"]
            for name, url in [*urls.items(), *zip(("kpi", "device"), extra, strict=True)]:
                if name == "label PDF":
                    continue
                response = page.goto(url)
                assert response is not None
                assert response.status == 200, (name, url)
                page.wait_for_load_state("networkidle")
                seen[name] = page.inner_text("body")
                if name == "device":
                    beats = page.locator("#beats tbody tr").all_inner_texts()
                assert english_in(seen[name]) == [], (name, english_in(seen[name]))
            pdf = page.request.get(urls["label PDF"])
            assert pdf.status == 200
            assert pdf.body().startswith(b"%PDF")
            browser.close()
        assert "明厨亮灶形式" in seen["kitchen"]
        assert "营业时间内在线时长占比" in seen["kitchen"]
        assert "农产品快速检测公示" in seen["market"]
        # 30 days of history: the kitchen shows outages and alarms, the charts more than one dot
        assert "心跳超时" in seen["kitchen"] or "设备离线消息" in seen["kitchen"]
        assert "无告警" not in seen["kitchen"]
        # the seeded days of heartbeats fill the device page's 最近心跳, not only the live ones
        assert len(beats) == 20, beats
        assert all("帧率 25.0" in b for b in beats), beats
        days = {b.split()[0] for b in beats}
        assert len(days) >= 2, beats  # the last 20 reach back past the demo's own minute
        cookie_less = urllib.request.urlopen(urls["certificate"], timeout=10)
        assert cookie_less.status == 200
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
