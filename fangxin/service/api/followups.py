"""Follow-up of positives and regulators' alerts (the item catalogue: api/catalogue)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel
from sqlalchemy import select

from fangxin.devices import registry
from fangxin.devices.models import Site
from fangxin.service import bodies
from fangxin.service.api.results import commit, refuse_nul
from fangxin.service.auth import (
    Principal,
    check_site,
    current_principal,
    in_scope,
    own_district,
    requires_role,
)
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, paged
from fangxin.service.problems import Problem, parse_body
from fangxin.trace.results import followup, followup_actions, views
from fangxin.trace.results.followup_models import Followup, FollowupAlert
from fangxin.trace.results.schemas import ActionIn, FollowupOut

bp = Blueprint("results_workflow", __name__, url_prefix="/api/v1")
bp.before_request(refuse_nul)


def _actor(principal: Principal, name: str | None) -> str:
    return f"{principal.role}#{principal.key_id}" + (f" {name}" if name else "")


def _followup(followup_id: int) -> tuple[Followup, Site]:
    session = db_session()
    found = session.get(Followup, followup_id)
    if found is None:
        raise Problem(404, "Not Found", f"follow-up {followup_id} does not exist")
    site = registry.get_site(session, found.site_id)
    check_site(current_principal(), site.id, site.district)
    return found, site


def _dump(model: BaseModel) -> Response:
    return jsonify(model.model_dump(mode="json"))


@bp.get("/followups")
@requires_role("regulator", "lab")
def list_followups() -> Response:
    """List follow-ups of positives (newest first), by site, district and state."""
    principal = current_principal()
    site_id, district = request.args.get("site"), request.args.get("district")
    if principal.role == "lab":
        site_id = principal.site_id
    elif principal.role == "regulator":
        district = own_district(principal, district)
    states, page = request.args.get("state"), page_args()
    if request.args.get("open") in ("1", "true"):
        states = ",".join(sorted(followup.OPEN_CASE))
    found = views.list_followups(
        db_session(),
        site_id=site_id,
        district=district,
        states=states.split(",") if states else None,
        offset=page.offset,
        limit=page.fetch,
    )
    return paged([views.brief(f).model_dump() | {"site": f.site_id} for f in found], page)


@bp.get("/followups/<int:followup_id>")
@requires_role("regulator", "lab")
def get_followup(followup_id: int) -> Response:
    """Return a follow-up with its result, retests, allowed actions and audited history."""
    found, _ = _followup(followup_id)
    return _dump(views.followup_out(db_session(), found, state().clock()))


@bp.post("/followups/<int:followup_id>/actions")
@requires_role("regulator", "lab")
def act(followup_id: int) -> Response:
    """Take a step of the follow-up (send_to_lab, request_recheck, lab_result, dispose, ...)."""
    _followup(followup_id)
    data = parse_body(ActionIn)
    session = db_session()
    principal = current_principal()
    actor = _actor(principal, data.actor_name)
    regulator = principal.role in ("regulator", "admin")
    now = state().clock()
    try:
        found = followup_actions.apply_action(
            session, followup_id, data, actor, now, regulator=regulator
        )
    except followup_actions.NotYourStep as exc:  # refused before anything was read or written
        raise Problem(403, "Forbidden", str(exc), action=data.action) from None
    except followup.IllegalTransition as exc:
        session.rollback()
        raise Problem(
            409, "Illegal transition", str(exc), state=exc.state, allowed_actions=exc.allowed
        ) from None
    except followup_actions.FollowupError as exc:
        session.rollback()
        raise Problem(422, "Cannot take this step", str(exc)) from None
    commit(session)
    return _dump(views.followup_out(session, found, now))


@bp.get("/alerts")
@requires_role("regulator")
def list_alerts() -> Response:
    """In-app alerts of confirmed positives, newest first (district-scoped keys see theirs)."""
    principal = current_principal()
    page = page_args()
    stmt = (
        select(FollowupAlert)
        .order_by(FollowupAlert.id.desc())
        .offset(page.offset)
        .limit(page.fetch)
    )
    district = own_district(principal, request.args.get("district"))
    if district:
        stmt = stmt.where(FollowupAlert.district == district)
    if request.args.get("unread") in ("1", "true"):
        stmt = stmt.where(FollowupAlert.read_at.is_(None))
    alerts = db_session().scalars(stmt).all()
    fields = ("id", "followup_id", "site_id", "district", "kind", "title", "body")
    return paged(
        [
            {name: getattr(a, name) for name in fields}
            | {"created_at": a.created_at.isoformat(), "read": a.read_at is not None}
            for a in alerts
        ],
        page,
    )


@bp.post("/alerts/<int:alert_id>/read")
@requires_role("regulator")
def read_alert(alert_id: int) -> Response:
    """Mark an alert read by the caller."""
    session, principal = db_session(), current_principal()
    alert = session.get(FollowupAlert, alert_id)
    if alert is None or not in_scope(principal.district, alert.district):
        raise Problem(404, "Not Found", f"alert {alert_id} does not exist")
    if alert.read_at is None:
        alert.read_at, alert.read_by = state().clock(), _actor(principal, None)
    session.commit()
    return jsonify(id=alert.id, read_at=alert.read_at.isoformat())


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    fid = [path_param("followup_id")]
    spec.add(
        "get",
        "/api/v1/followups",
        "Follow-ups of positives",
        {"200": listing(bodies.FOLLOWUP_ROW)},
        params=[*(query_param(n) for n in ("site", "district", "state", "open")), *PAGE_PARAMS],
    )
    spec.add(
        "get",
        "/api/v1/followups/{followup_id}",
        "A follow-up",
        {"200": json_response(spec.ref(FollowupOut))},
        params=fid,
    )
    spec.add(
        "post",
        "/api/v1/followups/{followup_id}/actions",
        "Take a workflow step (409 when the state does not allow it)",
        {"200": json_response(spec.ref(FollowupOut))},
        body=ActionIn,
        params=fid,
    )
    spec.add(
        "get",
        "/api/v1/alerts",
        "Regulators' in-app alerts",
        {"200": listing(bodies.ALERT)},
        params=[query_param("district"), query_param("unread"), *PAGE_PARAMS],
    )
    spec.add(
        "post",
        "/api/v1/alerts/{alert_id}/read",
        "Mark an alert read",
        {"200": json_response(bodies.ALERT_READ)},
        params=[path_param("alert_id")],
    )
