"""POST /api/v1/certificates at the door: key and subject in one query, audit row in its commit."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.service.api import certificates
from fangxin.service.auth import revoke_key
from fangxin.service.models import AuditEntry
from fangxin.trace.certificates.models import Certificate
from tests.helpers import counted
from tests.trace_helpers import CERT, auth, issuer, setup, subject


def _audit(sessions: sessionmaker[Session]) -> list[tuple[int, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.status, AuditEntry.object_id)
            .where(AuditEntry.endpoint == "certificates.issue_certificate")
            .order_by(AuditEntry.id)
        )
        return [(status, object_id) for status, object_id in rows]


def test_an_issue_reads_key_and_subject_once_and_commits_once_with_its_audit_row(
    client: FlaskClient, admin_key: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    secret, first = setup(client, admin_key)  # the signing key is published by the first
    with counted(engine, commits=True) as statements:
        response = client.post("/api/v1/certificates", json=CERT, headers=auth(secret))
    work = [" ".join(sql.split()) for sql in statements]
    assert response.status_code == 201
    number = response.get_json()["number"]
    reads = [w.split(" FROM ")[1].split(" WHERE ")[0] for w in work if w.startswith("SELECT")]
    # Before: the subject read on its own, and the audit row finished by an UPDATE and a COMMIT.
    assert reads == [
        "api_keys LEFT OUTER JOIN subjects ON subjects.id = api_keys.subject_id",
        "signing_keys",
    ]
    writes = [w.split(" (")[0] for w in work if not w.startswith("SELECT")]
    assert sorted(writes[:-1]) == [
        "INSERT INTO audit_log",
        "INSERT INTO certificate_sequences",
        "INSERT INTO certificates",
    ]
    assert writes[-1] == "COMMIT"  # nothing is written after the certificate's commit
    assert _audit(sessions) == [(201, f"number={first['number']}"), (201, f"number={number}")]


def test_an_answer_that_fails_after_the_commit_is_audited_beside_the_issuance(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret, first = setup(client, admin_key)

    def broken(*_args: Any) -> None:
        raise RuntimeError("the view could not be built")

    monkeypatch.setattr(certificates, "fresh_view", broken)
    response = client.post("/api/v1/certificates", json=CERT, headers=auth(secret))
    assert response.status_code == 500
    with sessions() as session:
        numbers = sorted(session.scalars(select(Certificate.number)))
    assert len(numbers) == 2  # the certificate was issued before the answer failed
    # The issuance's row stays as committed; a second row records what the caller was answered.
    assert _audit(sessions) == [
        (201, f"number={first['number']}"),
        (201, f"number={numbers[1]}"),
        (500, None),
    ]


def test_a_revoked_issuer_key_is_refused_on_the_very_next_request(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    secret, _first = setup(client, admin_key)
    assert client.post("/api/v1/certificates", json=CERT, headers=auth(secret)).status_code == 201
    with sessions() as session:
        assert revoke_key(session, secret[3:].partition("_")[0])
        session.commit()
    refused = client.post("/api/v1/certificates", json=CERT, headers=auth(secret))
    assert refused.status_code == 401
    assert refused.get_json()["detail"] == "unknown or revoked API key"
    assert [status for status, _ in _audit(sessions)] == [201, 201, 401]


def test_an_issuer_key_reads_only_its_own_subject(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    subject(client, admin_key)
    subject(client, admin_key, id="s-002", name="郏县二号合作社", credit_code=None)
    secret = issuer(client, admin_key, "s-001")
    other = client.post(
        "/api/v1/certificates", json={**CERT, "subject": "s-002"}, headers=auth(secret)
    )
    assert other.status_code == 403
    assert other.get_json()["detail"] == "this key may not act for subject s-002"
    missing = client.post(
        "/api/v1/certificates", json={**CERT, "subject": "s-404"}, headers=auth(secret)
    )
    assert missing.status_code == 404
    assert [status for status, _ in _audit(sessions)] == [403, 404]
