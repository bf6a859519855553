"""GET /api/v1/subjects: search by name or credit code, paging by limit and cursor, scope."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.trace_helpers import CREDIT_CODE, PRODUCER, PURCHASER, auth, issuer, key, subject


def _register_many(client: FlaskClient, admin_key: str) -> None:
    subject(client, admin_key)
    subject(client, admin_key, **PURCHASER, credit_code=None)
    for n in range(5):
        body = {**PURCHASER, "id": f"p-1{n}", "name": f"新华区第{n}收购站", "credit_code": None}
        subject(client, admin_key, **body)


def _ids(response: object) -> list[str]:
    return [s["id"] for s in response.get_json()]  # type: ignore[attr-defined]


def test_search_by_name_and_credit_code(client: FlaskClient, admin_key: str) -> None:
    _register_many(client, admin_key)
    by_name = client.get("/api/v1/subjects", query_string={"q": "绿源"}, headers=auth(admin_key))
    assert by_name.status_code == 200
    assert _ids(by_name) == ["s-001"]
    assert by_name.get_json()[0]["credit_code"] == CREDIT_CODE
    by_code = client.get(
        "/api/v1/subjects", query_string={"q": CREDIT_CODE[2:10].lower()}, headers=auth(admin_key)
    )
    assert _ids(by_code) == ["s-001"]
    none = client.get("/api/v1/subjects", query_string={"q": "%"}, headers=auth(admin_key))
    assert none.get_json() == []


def test_paging_walks_every_subject_once(client: FlaskClient, admin_key: str) -> None:
    _register_many(client, admin_key)
    seen: list[str] = []
    url: str | None = "/api/v1/subjects?limit=3"
    pages = 0
    while url is not None:
        response = client.get(url, headers=auth(admin_key))
        assert response.status_code == 200
        assert len(response.get_json()) <= 3
        seen += _ids(response)
        link = response.headers.get("Link")
        url = None
        if link:
            target = link.split(";")[0].strip("<>")
            parts = urlsplit(target)
            url = f"{parts.path}?{parts.query}"
        pages += 1
    assert pages == 3
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 7
    bad = client.get("/api/v1/subjects?cursor=nonsense", headers=auth(admin_key))
    assert bad.status_code == 400
    assert client.get("/api/v1/subjects?limit=0", headers=auth(admin_key)).status_code == 400


def test_scope_of_the_caller(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    _register_many(client, admin_key)
    xinhua = key(sessions, "regulator", district="新华区")
    listed = client.get("/api/v1/subjects", headers=auth(xinhua))
    assert "s-001" not in _ids(listed)
    assert "p-001" in _ids(listed)
    other = client.get("/api/v1/subjects?district=郏县", headers=auth(xinhua))
    assert other.status_code == 403
    own = issuer(client, admin_key, "s-001")
    assert _ids(client.get("/api/v1/subjects", headers=auth(own))) == ["s-001"]
    lab = key(sessions, "lab", site_id="m-001")
    assert client.get("/api/v1/subjects", headers=auth(lab)).status_code == 403
    assert PRODUCER["district"] == "郏县"
