"""The entry-check page and the scan page in Chromium show the rules they apply with sources."""

from __future__ import annotations

import base64
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from tests.test_browser_pages import (  # noqa: F401  (fixtures)
    Watch,
    _login,
    _shot,
    browser,
    db_url,
    pytestmark,
    server,
)
from tests.test_entry_rules import png
from tests.trace_helpers import auth, key, post_results, result


def _seed_entries(app: Flask, sessions: sessionmaker[Session], code: str) -> None:
    client = app.test_client()
    lab = key(sessions, "lab", site_id="m-001")

    def check(**body: Any) -> dict[str, Any]:
        lot = {"product": "菠菜", "quantity": 5, "unit": "kg", **body}
        response = client.post("/api/v1/sites/m-001/entries", json=lot, headers=auth(lab))
        assert response.status_code == 201, response.get_json()
        out: dict[str, Any] = response.get_json()
        return out

    check(certificate=code)  # a platform certificate: admitted
    photo = base64.b64encode(png()).decode()
    proof = {"type": "animal_quarantine", "number": "4100123456", "photo": photo}
    check(certificate=None, product="猪肉", category="畜禽肉", proofs=[proof])
    check(certificate="手写合格证-0001", product="白菜")
    check(certificate=None, product="油麦菜", category="叶菜类蔬菜")
    post_results(sessions, [result("fit", 8.0, sample="油麦菜")])


def test_entry_page_and_scan_page_show_rule_sources(  # noqa: F811  (fixtures by name)
    app: Flask,
    sessions: sessionmaker[Session],
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    base, code = server
    _seed_entries(app, sessions, code)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page, base)
    _login(page, base, "admin")
    page.goto(f"{base}/sites/m-001")
    page.click("text=入场查验")
    page.wait_for_url(f"{base}/sites/m-001/entries")
    table = page.inner_text("#entries")
    for text in (
        "外部合格证·待人工查验",
        "农业农村部令2025年第4号",  # an unknown certificate is not refused
        "动物检疫合格证明 4100123456",
        "动物防疫法",
        "准予入场",
        "适用于蔬菜，阴性结果可据以放行",
        "合格证查验",
        "GB 2763-2021",
    ):
        assert text in table, text
    assert "整顿办函〔2010〕50号" in page.inner_text("#fit-table")
    photo = page.locator("#entries a", has_text="照片")
    photo.click()
    page.wait_for_load_state("load")
    assert page.evaluate("document.images[0].naturalWidth") == 4
    page.go_back()
    _shot(page, "entries", "desktop")
    page.goto(f"{base}/c/{code}")
    main = page.inner_text("main")
    assert "电子签名校验通过" in main
    assert "真实有效" not in main
    assert "承诺依据：" in main
    assert "版式依据：农业农村部令2025年第4号" in main
    assert "合格证查验：" in main
    assert "农产品质量安全法" in main
    _shot(page, "scan-wording", "desktop")
    assert watch.problems == []
    context.close()
