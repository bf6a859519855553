"""Dashboard pages in Debian's Chromium (Playwright) at phone and desktop sizes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from tests.pages_helpers import PASSWORD, seed_city
from tests.trace_helpers import key, post_results, result, setup

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "pages"
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the browser checks rendering; figures are checked on both databases."""
    import shutil

    path = tmp_path / "fangxin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def server(app: Flask, sessions: sessionmaker[Session]) -> Iterator[tuple[str, str]]:
    seed_city(sessions)
    client = app.test_client()
    admin = key(sessions, "admin")
    _, cert = setup(client, admin)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", cert["code"]
    srv.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Watch:
    """Collect console errors, failed and external requests of a page."""

    def __init__(self, page: Any, base: str) -> None:
        self.problems: list[str] = []

        def console(m: Any) -> None:
            if m.type == "error":
                self.problems.append(m.text)

        page.on("console", console)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("requestfailed", lambda r: self.problems.append(f"failed {r.url}"))

        def response(r: Any) -> None:
            if r.status >= 400:
                self.problems.append(f"{r.status} {r.url}")

        page.on("response", response)

        def request(r: Any) -> None:
            if not r.url.startswith(base) and not r.url.startswith("data:"):
                self.problems.append(f"external {r.url}")

        page.on("request", request)


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    # Let the overview finish its own requests: a next goto would abort them (seen: dash.svg)
    # and the watcher would count that as a failed request of the page under test.
    page.wait_for_load_state("networkidle")


def _shot(page: Any, name: str, size: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_pages_render(browser: Any, server: tuple[str, str], size: str) -> None:
    base, code = server
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page, base)
    _login(page, base, "admin")
    page.wait_for_load_state("networkidle")
    charts = page.locator("figure.chart img")
    assert charts.count() == 3
    for i in range(3):
        assert charts.nth(i).evaluate("i => i.complete && i.naturalWidth > 0")
    assert "新华区" in page.inner_text("#markets")
    assert "卫东区" in page.inner_text("#markets")
    _shot(page, "overview", size)
    for name, path, marker in (
        ("site", "/sites/m-001", "#site-figures"),
        ("device", "/devices/cam-1?days=7", "#timeline"),
        ("kpi", "/kpi", "#kpi"),
        ("board", "/m/m-001/board", "body"),
        ("scan", f"/c/{code}", "body"),
    ):
        response = page.goto(base + path)
        assert response is not None, path
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert page.locator(marker).count() >= 1, path
        _shot(page, name, size)
    assert watch.problems == []
    context.close()


def test_scoping_in_browser(browser: Any, server: tuple[str, str]) -> None:
    base, _ = server
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    _login(page, base, "xinhua")
    assert "卫东区" not in page.inner_text("main")
    assert page.goto(f"{base}/sites/m-002").status == 404
    _shot(page, "scoped-404", "desktop")
    context.close()


def test_figures_without_javascript(browser: Any, server: tuple[str, str]) -> None:
    base, _ = server
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    _login(page, base, "admin")
    assert "50.0%" in page.inner_text("#markets")
    page.goto(f"{base}/kpi")
    assert "抽检量（批次/千人）" in page.inner_text("#kpi")
    context.close()


def _submit(page: Any, action: str, **fields: str) -> None:
    form = page.locator(f'form[data-action="{action}"]')
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if field.evaluate("f => f.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")


def test_positive_from_suspension_to_disposal(
    browser: Any, server: tuple[str, str], sessions: sessionmaker[Session]
) -> None:
    base, _ = server
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page, base)
    _login(page, base, "admin")
    page.click('#inbox a[href^="/followups/"]')  # the seeded positive r-1 of m-001
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#state") == "暂停销售，待复测"
    rules = page.inner_text("#rules")
    assert "GB/T 5009.199-2003（至少复测两次）（待核实）" in rules
    assert page.inner_text("#standard") == "依据：GB/T 5009.199-2003"
    actions = [
        a for a in page.locator("form.step").evaluate_all("fs => fs.map(f => f.dataset.action)")
    ]
    assert actions == ["send_to_lab", "report", "trace_upstream", "notify"]
    _shot(page, "followup-suspended", "desktop")

    # two repeats with the same method arrive from the instrument
    post_results(
        sessions, [result("r-1a", 66.0, retest_of="r-1"), result("r-1b", 71.0, retest_of="r-1")]
    )
    page.reload()
    assert page.inner_text("#state") == "确认不合格，待处置"
    assert "不得退货" in page.inner_text("#rules")
    assert "退货" not in page.inner_text("#actions")
    _submit(
        page,
        "dispose",
        disposal_method="harmless",
        witness="新华区市场监管所 王五",
        record_no="XH-0007",
    )
    assert page.inner_text("#state") == "已销毁或无害化处理"
    assert "无害化处理，见证人 新华区市场监管所 王五" in page.inner_text("#result")
    _shot(page, "followup-disposed", "desktop")

    assert page.locator('form[data-action="close"]').count() == 0  # not reported yet
    _submit(page, "report", office="新华区市场监督管理局", report_no="XHSJ-2026-118")
    _submit(page, "close")
    assert page.inner_text("#state") == "已结案"
    history = page.inner_text("#history")
    for step in (
        "阳性立案，暂停销售",
        "复测",
        "两次复测阳性，确认不合格",
        "见证销毁或无害化处理",
        "报告县级市场监管部门",
        "结案",
    ):
        assert step in history
    _shot(page, "followup-closed", "desktop")
    assert watch.problems == []
    context.close()
