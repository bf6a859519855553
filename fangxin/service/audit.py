"""Record every write request that reaches a handler in the append-only audit log.

Fail closed (§12): a request's transaction writes its audit row before it commits, so a change
whose row cannot be written is rolled back and refused (503). The row is written with status 0
and gets its HTTP status once, after the response (the database lets nothing else change); an
issuance's row is written final with its certificate (`shared_entry`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fangxin.service.context import state
from fangxin.service.models import AuditEntry
from fangxin.service.problems import Problem
from fangxin.service.ratelimit import client_address

_LOGGER = logging.getLogger(__name__)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Refusals a flood repeats: one row per address, status and minute, with a count (§7).
COUNTED = frozenset({401, 429})
PENDING = 0  # written with the request's changes; the status follows the response


def object_ref(view_args: Mapping[str, Any] | None, created: Any) -> str | None:
    """Name what a request touched: its path's ids, and the id or number of what it created."""
    parts = [f"{k}={v}" for k, v in (view_args or {}).items()]
    if isinstance(created, Mapping):
        parts += [f"{k}={created[k]}" for k in ("id", "number") if created.get(k) is not None]
    return ",".join(parts)[:200] or None


def _object_id(response: Response | None) -> str | None:
    body: Any = None
    if (
        response is not None
        and response.status_code == 201
        and response.is_json
        and not response.direct_passthrough
    ):
        body = response.get_json(silent=True)
    return object_ref(request.view_args, body)


def _key_prefix() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith("fx_"):
        return None
    return token[3:].partition("_")[0][:32] or None


def _username() -> str | None:
    viewer = g.get("viewer")
    if viewer is not None:
        return str(viewer.username)[:64]
    if request.endpoint == "dash.login":
        return (request.form.get("username") or "")[:64] or None  # who tried to sign in
    return None


def entry_for(response: Response | None) -> AuditEntry:
    """Describe this request and its response (None: not answered yet) as an audit entry."""
    principal = g.get("principal")
    return AuditEntry(
        key_id=principal.key_id if principal else None,
        key_prefix=_key_prefix(),
        role=principal.role if principal else (g.viewer.role if g.get("viewer") else None),
        username=_username(),
        method=request.method[:8],
        path=request.path[:500],
        endpoint=(request.endpoint or "")[:100] or None,
        status=response.status_code if response is not None else PENDING,
        # A pending row has none: the trigger lets the finishing update set it once, from NULL.
        object_id=_object_id(response) if response is not None else None,
        client=client_address(state().settings.trusted_proxies)[:64],
        request_id=g.get("request_id"),
        at=state().clock(),
    )


def _counted(session: Session, entry: AuditEntry) -> bool:
    """Add one attempt to this address's row of the same refusal this minute, if there is one."""
    minute = entry.at.replace(second=0, microsecond=0)
    row = session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.client == entry.client,
            AuditEntry.status == entry.status,
            AuditEntry.at >= minute,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if row is None:
        return False
    session.execute(
        update(AuditEntry).where(AuditEntry.id == row).values(attempts=AuditEntry.attempts + 1)
    )
    return True


def _auditable() -> bool:
    return request.method not in READ_METHODS and request.endpoint is not None


def shared_entry(status: int) -> Callable[[Mapping[str, Any]], AuditEntry]:
    """Return the maker of this request's audit row, final, for a transaction of another session.

    Group commit (IssueQueue) stores a request's changes in whichever caller's session leads:
    the row goes with them, so it is still written in the transaction of the changes. It is
    written as answered (`status`, and the created object's id or number the maker is given):
    no second transaction per request finishes it. The maker runs in the leader's thread, so it
    reads nothing of this request.
    """
    entry = entry_for(None)
    entry.status = status
    view_args = dict(request.view_args or {})
    g.audit_entry, g.audit_status = entry, status

    def made(created: Mapping[str, Any]) -> AuditEntry:
        entry.object_id = object_ref(view_args, created if status == 201 else None)
        return entry

    return made


def committed() -> None:
    """Note that the shared entry was committed with its changes, as answered."""
    entry: AuditEntry = g.audit_entry
    g.audit_id = entry.id


def _before_commit(session: Session) -> None:
    """Write this request's audit row in the transaction of its changes, or refuse them."""
    if not has_request_context() or session is not g.get("db") or not _auditable():
        return
    if g.get("audit_id") is not None or g.get("audit_entry") is not None:
        return
    session.flush()  # the handler's own changes first: their errors stay theirs
    entry = entry_for(None)
    try:
        session.add(entry)
        session.flush()
    except SQLAlchemyError as exc:
        _LOGGER.exception("Audit log unwritable: refusing %s %s", request.method, request.path)
        raise Problem(
            503,
            "Audit log unavailable",
            "nothing was changed: the audit entry of this request could not be written",
        ) from exc
    g.audit_id = entry.id


def _finish(session: Session, audit_id: int, response: Response) -> None:
    session.execute(
        update(AuditEntry)
        .where(AuditEntry.id == audit_id, AuditEntry.status == PENDING)
        .values(status=response.status_code, object_id=_object_id(response))
    )


def init_app(app: Flask) -> None:
    """Audit each non-read request that matched a route: in its transaction, else on its own."""
    event.listen(app.extensions["fangxin"].sessions, "before_commit", _before_commit)

    @app.after_request
    def _audit(response: Response) -> Response:
        if not _auditable():
            return response
        request_session: Session | None = g.get("db")
        if request_session is not None:
            # A failed handler may still hold SQLite's write lock; its work is discarded anyway.
            request_session.rollback()
        audit_id = g.pop("audit_id", None)
        shared = g.get("audit_status")
        if audit_id is not None and shared == response.status_code:
            return response  # written as answered, with its changes
        try:
            with state().sessions.begin() as session:
                if audit_id is not None and shared is None:
                    _finish(session, audit_id, response)
                    return response
                # No row went with the changes, or a shared row's answer changed after its
                # commit (a failure building the response): this row records the answer.
                entry = entry_for(response)
                if entry.status not in COUNTED or not _counted(session, entry):
                    session.add(entry)
        except SQLAlchemyError:
            _LOGGER.exception(
                "Could not write the audit entry of %s %s", request.method, request.path
            )
        return response
