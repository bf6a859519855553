"""The KPI page with imported data in Debian's Chromium, at phone and desktop widths."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from tests.pages_helpers import seed_city
from tests.plan_helpers import licence, load, seed_populations
from tests.test_browser_pages import ARGS, CHROMIUM, SIZES, Watch, _login, _shot

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the browser checks rendering; figures are checked on both databases."""
    path = tmp_path / "fangxin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def base(app: Flask, sessions: sessionmaker[Session]) -> Iterator[str]:
    seed_city(sessions)
    seed_populations(sessions)
    load(
        sessions,
        "sampling",
        [{"district": "叶县", "from": "2024-01-01", "to": "2024-12-31", "batches": 2810}],
    )
    load(sessions, "licences", [licence("L1", "中型餐饮"), licence("L2", "大型餐饮")])
    load(
        sessions,
        "forms",
        [{"licence_no": "L1", "form": "video", "accepted": "是", "inspected_on": "2024-05-01"}],
    )
    load(
        sessions,
        "figures",
        [{"code": "six_s", "district": "新华区", "year": 2024, "numerator": 45, "denominator": 50}],
    )
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_kpi_page_with_imported_data(browser: Any, base: str, size: str) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page, base)
    _login(page, base, "admin")
    page.goto(f"{base}/kpi?year=2024")
    page.wait_for_load_state("networkidle")
    row = page.locator('tr[data-district="叶县"][data-code="sampling_per_1000"]')
    assert row.locator("td.value").inner_text() == "4.001 批次/千人"
    assert "ok" in (row.locator("td.value").get_attribute("class") or "")
    assert row.locator("td.met").inner_text() == "达标"
    assert "三（一）" in row.locator("small.clause").inner_text()
    six_s = page.locator('tr[data-district="新华区"][data-code="six_s"]')
    assert six_s.locator("td.value").inner_text() == "90.0%"
    assert six_s.locator("td.met").inner_text() == "未达标"
    mclz = page.locator('tr[data-district="新华区"][data-code="mclz"]')
    assert mclz.locator("td.parts").inner_text() == "1 / 2"
    missing = page.locator('tr[data-district="新华区"][data-code="training"] td.value')
    assert missing.inner_text() == "未导入"
    # The definition and sources open on a tap; nothing hidden needs JavaScript.
    row.locator("summary").click()
    assert "常住人口（第七次全国人口普查）" in row.locator("details").inner_text()
    # The page itself never scrolls sideways: the wide table scrolls inside its card.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert (
        page.locator("#plan-note")
        .inner_text()
        .startswith("目标来源：《平顶山市深化食品安全放心工程")
    )
    _shot(page, "kpi-imported", size)
    assert watch.problems == []
    context.close()
