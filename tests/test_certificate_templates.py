"""Imported certificates keep commitment and basis labels as printed, per template version."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.records import COMMITMENTS
from tests.trace_helpers import CERT, auth, issue, subject

PRINTED_2019 = (
    "我承诺对生产销售的食用农产品：不使用禁用农药兽药、停用兽药和非法添加物；"
    "常规农药兽药残留不超标；对承诺的真实性负责。"
)


def imported(version: str = "2019", **body: Any) -> dict[str, Any]:
    return {
        **CERT,
        "template_version": version,
        "issued_at": "2023-05-04T09:30:00+08:00",
        "basis": ["质量安全内部控制合格", "自我检测合格"],
        "commitment": PRINTED_2019,
        **body,
    }


@pytest.mark.parametrize("version", ["2019", "2023"])
def test_an_import_keeps_its_printed_text_and_labels(
    client: FlaskClient, admin_key: str, version: str
) -> None:
    subject(client, admin_key)
    cert = issue(client, admin_key, **imported(version))
    assert cert["commitment"] == PRINTED_2019  # never restated in the 2026 wording
    assert cert["basis_labels"] == ["质量安全内部控制合格", "自我检测合格"]
    assert cert["basis"] == ["quality_control", "self_test"]
    assert cert["signed"]["basis_printed"] == cert["basis_labels"]  # the signature covers them
    assert cert["signed"]["v"] == 2  # content version 2: with the printed labels
    assert cert["signature"]["verified"] is True
    assert "文号未核实" in cert["template_source"]
    page = client.get(f"/c/{cert['code']}").get_data(as_text=True)
    assert PRINTED_2019 in page
    assert "质量安全内部控制合格" in page
    assert "质量安全控制符合要求" not in page  # not the 2026 label
    assert "承诺依据：" in page
    assert f"{version} 版式" in page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"commitment": None}, "commitment"),  # an import states what it printed
        ({"basis": ["quality_control"]}, "basis"),  # a code is not what was printed
        ({"basis": ["质量安全控制符合要求"]}, "basis"),  # a 2026 label on a 2019 form
    ],
)
def test_an_import_without_its_printed_text_is_refused(
    client: FlaskClient, admin_key: str, body: dict[str, Any], field: str
) -> None:
    subject(client, admin_key)
    response = client.post("/api/v1/certificates", json=imported(**body), headers=auth(admin_key))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == field


def test_the_2026_wording_is_fixed(client: FlaskClient, admin_key: str) -> None:
    subject(client, admin_key)
    changed = client.post(
        "/api/v1/certificates",
        json={**CERT, "commitment": "我承诺：放心。"},
        headers=auth(admin_key),
    )
    assert changed.status_code == 422
    cert = issue(client, admin_key, commitment=COMMITMENTS["producer"])
    assert cert["basis_labels"] == ["质量安全控制符合要求"]
    assert "basis_printed" not in cert["signed"]  # 2026 labels follow from the codes
    assert "农业农村部令2025年第4号" in cert["template_source"]


def test_an_import_from_before_labels_were_kept_says_so(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    subject(client, admin_key)
    cert = issue(client, admin_key, **imported())
    with sessions.begin() as session:  # as migration 0014 leaves an older import
        session.execute(update(Certificate).values(basis_printed=None))
    page = client.get(f"/c/{cert['code']}").get_data(as_text=True)
    assert 'data-flag="basis-not-printed"' in page
