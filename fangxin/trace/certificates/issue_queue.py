"""Group commit for concurrent issuers: one transaction, one counter bump, one commit for many."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, make_transient_to_detached

from fangxin.trace.certificates import issuance
from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.records import CertificateError
from fangxin.trace.certificates.schemas import CertificateIn
from fangxin.trace.certificates.signing import Signer

MAX_BATCH = 64
# Makes the rows committed with a certificate once it is numbered (its audit entry).
Also = Callable[[Certificate], Sequence[object]]


@dataclass(slots=True, eq=False)
class _Request:
    data: CertificateIn
    subject_id: str
    now: dt.datetime
    also: Also | None = None
    rows: Sequence[object] = ()  # what `also` made, in the leader's session
    cert: Certificate | None = None  # in the leader's session
    values: dict[str, Any] = field(default_factory=dict)  # its columns, for the caller's
    error: Exception | None = None
    deferred: bool = False
    done: bool = False


class LeaderFailed(RuntimeError):
    """The caller that was issuing this request's batch stopped before finishing it."""


class IssueQueue:
    """Issue certificates for one process's concurrent callers, many to a transaction.

    The day's counter row is locked from numbering to commit, so only one transaction at a
    time can number, and a commit (a WAL flush) per certificate capped issuance. Here one
    waiting caller leads: in its own session it validates every waiting request, numbers the
    valid ones with one counter bump and commits once. Each caller gets its own certificate or
    its own error; a request that fails validation takes no number, so the day stays gap-free.
    """

    def __init__(self, signer: Signer, tz: str, max_batch: int = MAX_BATCH) -> None:
        """Issue with this signer, numbering by the day in timezone tz."""
        self._signer = signer
        self._tz = tz
        self._max = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []
        self._leading = False

    def issue(
        self,
        session: Session,
        data: CertificateIn,
        subject: Subject,
        now: dt.datetime,
        also: Also | None = None,
    ) -> Certificate:
        """Issue and commit one certificate with the rows `also` makes of it; return it.

        The certificate is durable when this returns. Its transaction may be another caller's:
        the caller's own session is committed only if it led the batch.
        """
        if session.get_bind().dialect.name != "postgresql":
            # SQLite has one writer and its readers keep their snapshot: no grouping there.
            cert = issuance.issue(session, data, subject, self._signer, now, self._tz)
            if also is not None:
                session.add_all(also(cert))
                session.flush()
            session.commit()
            return cert
        request = _Request(data, subject.id, now, also)
        batch = self._wait(request)
        if batch:
            self._lead(session, batch)
        if request.error is not None:
            raise request.error
        if batch:
            assert request.cert is not None
            return request.cert
        # Another caller's session stored it: the same row, without reading it back.
        cert = Certificate(**request.values)
        make_transient_to_detached(cert)
        session.add(cert)
        return cert

    def issue_all(
        self, session: Session, items: list[tuple[CertificateIn, Subject, dt.datetime]]
    ) -> list[Certificate | Exception]:
        """Issue these requests as one batch in the session (committed); each its own outcome."""
        requests = [_Request(data, subject.id, now) for data, subject, now in items]
        pending = requests
        while pending:
            self._run(session, pending, lambda: None)
            pending = [r for r in pending if r.deferred]
            for r in pending:
                r.deferred = False
        outcomes: list[Certificate | Exception] = []
        for r in requests:
            if r.error is not None:
                outcomes.append(r.error)
            else:
                assert r.cert is not None
                outcomes.append(r.cert)
        return outcomes

    def _wait(self, request: _Request) -> list[_Request]:
        """Queue the request; return the batch to lead, or [] once another caller issued it."""
        with self._cond:
            self._waiting.append(request)
            # Taken into another caller's batch, the request is out of the list but not done.
            while not request.done and (self._leading or request not in self._waiting):
                self._cond.wait()
            if request.done:
                return []
            self._leading = True
            others = [r for r in self._waiting if r is not request][: self._max - 1]
            batch = [request, *others]
            self._waiting = [r for r in self._waiting if r not in batch]
            return batch

    def _lead(self, session: Session, batch: list[_Request]) -> None:
        """Issue the batch, let the next leader start once it is stored, then wake its callers."""
        leading = True

        def release() -> None:
            # The next batch is validated while this one commits; its counter bump waits for
            # this commit on the counter row's lock.
            nonlocal leading
            with self._cond:
                self._leading = leading = False
                self._cond.notify_all()

        try:
            self._run(session, batch, release)
            for r in batch[1:]:
                # Their rows are the other callers' now: a later rollback of this session (the
                # leader's request ending) would expire them before those callers read them.
                for row in r.rows:
                    if row in session:
                        session.expunge(row)
        finally:
            with self._cond:
                for r in batch:
                    if r.cert is None and r.error is None and not r.deferred:
                        r.error = LeaderFailed("the batch issuing this certificate did not finish")
                # Deferred requests go first in the next batch; one of their callers leads it.
                self._waiting[:0] = [r for r in batch if r.deferred]
                for r in batch:
                    r.done = not r.deferred
                    r.deferred = False
                if leading:
                    self._leading = False
                self._cond.notify_all()

    def _run(self, session: Session, batch: list[_Request], stored: Callable[[], None]) -> None:
        """Issue a batch in one transaction; if the database refuses it, issue one by one."""
        try:
            drafts = self._prepare(session, batch)
            issuance.store(session, [draft for _, draft in drafts], self._signer)
            for r, draft in drafts:  # rows made of the numbered certificate (its audit entry)
                r.rows = list(r.also(draft.cert)) if r.also is not None else []
                session.add_all(r.rows)
            session.flush()  # here, not at the commit: a refused row is retried one by one
        except SQLAlchemyError as exc:
            session.rollback()
            if len(batch) == 1:
                batch[0].error = exc
                return
            # One request's row (a duplicate GTIN and lot, say) must not fail the others.
            for r in batch:
                r.error, r.deferred = None, False
                self._run(session, [r], lambda: None)
            return
        stored()
        try:
            session.commit()
        except SQLAlchemyError as exc:
            # The outcome of a failed commit is unknown: never retry it, tell every caller.
            session.rollback()
            for r, _ in drafts:
                r.error = exc
            return
        columns = [attr.key for attr in inspect(Certificate).column_attrs]
        for r, draft in drafts:
            r.cert = draft.cert
            r.values = {key: getattr(draft.cert, key) for key in columns}

    def _prepare(
        self, session: Session, batch: list[_Request]
    ) -> list[tuple[_Request, issuance.Draft]]:
        """Validate each request; set its own error, or defer it if it draws on a lot drawn here."""
        drafts: list[tuple[_Request, issuance.Draft]] = []
        drawn: set[int] = set()
        for r in batch:
            subject = session.get(Subject, r.subject_id)
            try:
                if subject is None:
                    raise CertificateError("subject", f"no subject {r.subject_id}")
                draft = issuance.prepare(session, r.data, subject, r.now, self._tz)
            except SQLAlchemyError:
                raise
            except Exception as exc:  # noqa: BLE001 - the caller's own error, raised in its thread
                r.error = exc
                continue
            parents = {d.parent.id for d in draft.draws}
            if parents & drawn:
                # What is left of that lot counts stored links only: issue it after this batch.
                r.deferred = True
                continue
            drawn |= parents
            drafts.append((r, draft))
        return drafts
