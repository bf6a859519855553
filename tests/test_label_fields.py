"""Labels never cut the six required fields: a larger label, or a refusal naming the field."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image

from fangxin.trace.certificates.labels import (
    REQUIRED_FIELDS,
    SIZE_ORDER,
    LabelData,
    LabelTooSmall,
    layout,
)
from fangxin.trace.certificates.records import COMMITMENTS
from tests.trace_helpers import auth, issue, issuer, subject

LONG_NAME = "郏县绿源蔬菜种植农民专业合作社联合社"  # 18 characters
URL = "https://hgz.scjgj.pingdingshan.gov.cn/c/ABCDEFGHIJKLMNOP"


def data(name: str, origin: str = "河南省平顶山市郏县") -> LabelData:
    return LabelData(
        number="HGZ20261129-000123",
        url=URL,
        fields=(
            ("产品名称", "菠菜"),
            ("数量（重量）", "50 kg"),
            ("产地", origin),
            ("开具日期", "2026-11-29"),
            ("承诺主体", name),
            ("联系方式", "0375-1234567"),
        ),
        commitment=COMMITMENTS["producer"],
        basis=(("质量安全控制符合要求", True), ("自行检测合格", False), ("委托检测合格", False)),
    )


def test_the_six_fields_are_the_required_ones_in_order() -> None:
    out = layout(data("合作社"))
    assert [t.text.split("：")[0] for t in out.texts[1:7]] == list(REQUIRED_FIELDS)
    assert any(t.text == "承诺依据：" for t in out.texts)  # the tick boxes' caption


@pytest.mark.parametrize(
    ("name", "chosen"),
    [
        ("郏县绿源蔬菜合作社", "60x40"),  # fits the smallest label
        (LONG_NAME, "100x70"),  # too long for 60x40 and 70x50: the larger label
    ],
)
def test_the_smallest_label_that_holds_every_field_is_chosen(name: str, chosen: str) -> None:
    out = layout(data(name))
    assert out.size == chosen
    assert all("…" not in t.text for t in out.texts)
    assert any(t.text == f"承诺主体：{name}" for t in out.texts)  # whole, never cut


@pytest.mark.parametrize("size", ["60x40", "70x50"])
def test_a_size_too_small_is_refused_naming_the_fields(size: str) -> None:
    with pytest.raises(LabelTooSmall) as caught:
        layout(data(LONG_NAME, "河南省平顶山市郏县长桥镇三郎庙村第二村民组"), size)
    assert caught.value.fields == ["产地", "承诺主体"]
    assert caught.value.larger == "100x70"


def test_nothing_holds_a_name_longer_than_the_largest_label() -> None:
    with pytest.raises(LabelTooSmall) as caught:
        layout(data(LONG_NAME * 2))
    assert (caught.value.fields, caught.value.larger) == (["承诺主体"], None)
    assert caught.value.size == SIZE_ORDER[-1]


def test_the_api_prints_larger_or_refuses_with_problem_json(
    client: FlaskClient, admin_key: str
) -> None:
    subject(client, admin_key, name=LONG_NAME)
    secret = issuer(client, admin_key, "s-001")
    cert = issue(client, secret)
    base = f"/api/v1/certificates/{cert['number']}"
    refused = client.get(f"{base}/label.png?size=60x40", headers=auth(secret))
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    body = refused.get_json()
    assert [(e["field"], e["label"]) for e in body["errors"]] == [("subject_name", "承诺主体")]
    assert body["larger_size"] == "100x70"
    chosen = client.get(f"{base}/label.png", headers=auth(secret))  # no size: the one that fits
    assert chosen.status_code == 200
    assert Image.open(io.BytesIO(chosen.data)).size == (
        round(100 * 203 / 25.4),
        round(70 * 203 / 25.4),
    )
    page = client.get(f"{base}/label.html", headers=auth(secret)).get_data(as_text=True)
    assert "@page { size: 100mm 70mm; margin: 0; }" in page
    assert "六项完整打印" in page
    assert "农业农村部令2025年第4号" in page
