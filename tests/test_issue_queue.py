"""Group commit of certificates: own outcome per caller, numbers unique and gap-free per day."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.service.models import AuditEntry
from fangxin.trace.certificates import issuance
from fangxin.trace.certificates.issue_queue import IssueQueue
from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.records import (
    CertificateConflict,
    CertificateError,
    verify_certificate,
)
from fangxin.trace.certificates.schemas import CertificateIn, SubjectIn
from fangxin.trace.certificates.signing import generate
from fangxin.trace.certificates.subjects import add_subject
from tests.trace_helpers import CERT, PRODUCER, PURCHASER, auth, setup

TZ = "Asia/Shanghai"


def _noon() -> dt.datetime:
    """Yesterday's local noon: a day's numbers and a back-dated lot never straddle midnight."""
    local = utcnow().astimezone(ZoneInfo(TZ)).replace(hour=12, minute=0, second=0, microsecond=0)
    return (local - dt.timedelta(days=1)).astimezone(dt.UTC)


PREFIX = "614141"


def _subjects(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        add_subject(session, SubjectIn.model_validate({**PRODUCER, "gtin_prefix": PREFIX}))
        add_subject(session, SubjectIn.model_validate(PURCHASER))
        session.commit()


def _body(**overrides: Any) -> CertificateIn:
    return CertificateIn.model_validate({**CERT, **overrides})


def _stored(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Certificate.number)))


def _seqs(numbers: list[str]) -> list[int]:
    return sorted(int(n[-6:]) for n in numbers)


def test_a_bad_request_in_a_batch_takes_no_number(sessions: sessionmaker[Session]) -> None:
    _subjects(sessions)
    queue = IssueQueue(generate(), TZ)
    with sessions() as session:
        producer = session.get_one(Subject, PRODUCER["id"])
        now = _noon()
        outcomes = queue.issue_all(
            session,
            [(_body(), producer, now), (_body(unit="桶"), producer, now), (_body(), producer, now)],
        )
    assert isinstance(outcomes[1], CertificateError)
    assert outcomes[1].field == "unit"
    first, third = outcomes[0], outcomes[2]
    assert isinstance(first, Certificate)
    assert isinstance(third, Certificate)
    assert _seqs([first.number, third.number]) == [1, 2]
    assert _stored(sessions) == sorted([first.number, third.number])


def test_a_batch_the_database_refuses_is_issued_one_by_one(
    sessions: sessionmaker[Session],
) -> None:
    _subjects(sessions)
    queue = IssueQueue(generate(), TZ)
    twin = _body(gtin="06141411234562", lot="A1")
    with sessions() as session:
        producer = session.get_one(Subject, PRODUCER["id"])
        now = _noon()
        # Both pass validation (neither is stored yet); the unique (gtin, lot) refuses the batch.
        outcomes = queue.issue_all(
            session, [(twin, producer, now), (_body(), producer, now), (twin, producer, now)]
        )
    assert isinstance(outcomes[0], Certificate)
    assert isinstance(outcomes[1], Certificate)
    assert isinstance(outcomes[2], CertificateConflict)
    numbers = _stored(sessions)
    assert numbers == sorted([outcomes[0].number, outcomes[1].number])
    assert _seqs(numbers) == [1, 2]


def test_a_rolled_back_issue_leaves_no_gap(sessions: sessionmaker[Session]) -> None:
    _subjects(sessions)
    signer = generate()
    with sessions() as session:
        producer = session.get_one(Subject, PRODUCER["id"])
        dropped = issuance.issue(session, _body(), producer, signer, _noon(), TZ)
        assert dropped.number.endswith("-000001")
        session.rollback()
    with sessions() as session:
        producer = session.get_one(Subject, PRODUCER["id"])
        kept = IssueQueue(signer, TZ).issue(session, _body(), producer, _noon())
    assert kept.number.endswith("-000001")
    assert _stored(sessions) == [kept.number]


def test_draws_on_one_lot_in_one_batch_cannot_overdraw(sessions: sessionmaker[Session]) -> None:
    _subjects(sessions)
    queue = IssueQueue(generate(), TZ)
    now = _noon()
    with sessions() as session:
        purchaser = session.get_one(Subject, PURCHASER["id"])
        lot = _body(
            subject=PURCHASER["id"],
            template_version="2023",
            issued_at=now - dt.timedelta(hours=1),
            commitment="我承诺收购销售的食用农产品符合要求",
            basis=["自我承诺"],
        )
        parent = queue.issue(session, lot, purchaser, now)
        split = _body(subject=PURCHASER["id"], quantity=30, upstream=[parent.number])
        outcomes = queue.issue_all(session, [(split, purchaser, now), (split, purchaser, now)])
    assert isinstance(outcomes[0], Certificate)
    assert isinstance(outcomes[1], CertificateError)
    assert "has 20 kg left" in str(outcomes[1])
    assert _seqs(_stored(sessions)) == [1, 2]


def test_concurrent_callers_each_get_their_own_outcome(sessions: sessionmaker[Session]) -> None:
    _subjects(sessions)
    signer = generate()
    queue = IssueQueue(signer, TZ)
    got: list[tuple[int, str, int]] = []  # (thread, number, id) as each caller saw it
    refused: list[int] = []
    errors: list[BaseException] = []

    def caller(t: int) -> None:
        try:
            for i in range(6):
                with sessions() as session:
                    producer = session.get_one(Subject, PRODUCER["id"])
                    bad = (t + i) % 3 == 0
                    try:
                        cert = queue.issue(
                            session, _body(unit="桶" if bad else "kg"), producer, _noon()
                        )
                    except CertificateError:
                        refused.append(t)
                        assert bad
                        continue
                    assert not bad
                    assert cert in session
                    got.append((t, cert.number, cert.id))
                    session.commit()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(refused) == 10
    assert len(got) == 20
    assert _seqs([n for _, n, _ in got]) == list(range(1, 21))
    with sessions() as session:
        rows = {c.id: c for c in session.scalars(select(Certificate))}
        assert {(cid, number) for _, number, cid in got} == {(i, c.number) for i, c in rows.items()}
        cert = rows[got[0][2]]
        assert verify_certificate(session, cert) is None


@pytest.mark.parametrize("count", [1, 3])
def test_issue_all_numbers_in_request_order(sessions: sessionmaker[Session], count: int) -> None:
    _subjects(sessions)
    queue = IssueQueue(generate(), TZ)
    with sessions() as session:
        producer = session.get_one(Subject, PRODUCER["id"])
        outcomes = queue.issue_all(session, [(_body(), producer, _noon())] * count)
    numbers = [c.number for c in outcomes if isinstance(c, Certificate)]
    assert _seqs(numbers) == list(range(1, count + 1))
    assert numbers == sorted(numbers)


def test_concurrent_posts_each_commit_their_audit_row_with_their_certificate(
    app: Flask, client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    secret, first = setup(client, admin_key)
    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []

    def caller(t: int) -> None:
        try:
            own = app.test_client()
            for i in range(4):
                body = {**CERT, "unit": "桶" if (t + i) % 4 == 0 else "kg"}
                response = own.post("/api/v1/certificates", json=body, headers=auth(secret))
                answers.append((response.status_code, response.get_json()))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(status for status, _ in answers) == [201] * 12 + [422] * 4
    numbers = [first["number"]] + [body["number"] for status, body in answers if status == 201]
    assert _seqs(numbers) == list(range(1, 14))
    with sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.endpoint == "certificates.issue_certificate")
        ).all()
    assert sorted(r.status for r in rows) == [201] * 13 + [422] * 4
    assert sorted(r.object_id or "" for r in rows if r.status == 201) == sorted(
        f"number={n}" for n in numbers
    )


def _entry(path: str) -> AuditEntry:
    return AuditEntry(method="POST", path=path, status=0, client="test", at=utcnow())


def test_a_callers_row_outlives_the_leaders_session(sessions: sessionmaker[Session]) -> None:
    """The leader's request ends (rollback, close) before its batch's other callers read ids."""
    _subjects(sessions)
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("callers share a transaction only on PostgreSQL")
    queue = IssueQueue(generate(), TZ)
    issued, ended = threading.Barrier(2), threading.Barrier(2)
    ids: dict[str, int] = {}
    errors: list[BaseException] = []

    def caller(name: str) -> None:
        try:
            entry = _entry(f"/{name}")
            with sessions() as session:
                producer = session.get_one(Subject, PRODUCER["id"])
                queue.issue(session, _body(), producer, _noon(), also=lambda _c: [entry])
                leader = entry in session
                issued.wait()
                if leader:
                    ids[name] = entry.id  # read as the API does, before its request ends
                    session.scalars(select(Certificate.number)).all()  # the view's reads
                    session.rollback()
                    session.close()
                ended.wait()
                if not leader:
                    ids[name] = entry.id
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
            issued.abort()
            ended.abort()

    # Hold both callers in the queue as if a batch were being issued, so one leads them both.
    with queue._cond:
        queue._leading = True
    threads = [threading.Thread(target=caller, args=(n,)) for n in ("a", "b")]
    for th in threads:
        th.start()
    while True:
        with queue._cond:
            if len(queue._waiting) == 2:
                queue._leading = False
                queue._cond.notify_all()
                break
        threading.Event().wait(0.01)
    for th in threads:
        th.join()
    assert errors == []
    with sessions() as session:
        stored = {p: i for p, i in session.execute(select(AuditEntry.path, AuditEntry.id))}
    assert stored == {"/a": ids["a"], "/b": ids["b"]}
    assert _seqs(_stored(sessions)) == [1, 2]
